{{/*
How ratelimit reaches Redis, in envoyproxy/ratelimit's terms: REDIS_TYPE single|sentinel|cluster
and REDIS_URL as host:port, "master,sentinel1,sentinel2" or "node1,node2".
*/}}
{{- define "meshguard.redisType" -}}
{{- $mode := .Values.redis.mode -}}
{{- if or (eq $mode "sentinel") (eq $mode "cluster") }}{{ $mode }}{{ else }}single{{ end -}}
{{- end -}}

{{- define "meshguard.redisUrl" -}}
{{- $redis := .Values.redis -}}
{{- if eq $redis.mode "internal" -}}
{{- printf "%s:%v" (include "meshguard.componentName" (dict "root" . "name" "redis")) $redis.internal.port -}}
{{- else if eq $redis.mode "external" -}}
{{- required "redis.url is required when redis.mode=external (host:port of your Redis)" $redis.url -}}
{{- else if eq $redis.mode "sentinel" -}}
{{- if lt (len $redis.sentinel.addresses) 2 -}}
{{- fail "redis.sentinel.addresses needs at least two host:port entries when redis.mode=sentinel" -}}
{{- end -}}
{{- join "," (prepend $redis.sentinel.addresses $redis.sentinel.masterName) -}}
{{- else -}}
{{- if not $redis.cluster.addresses -}}
{{- fail "redis.cluster.addresses needs at least one host:port seed node when redis.mode=cluster" -}}
{{- end -}}
{{- join "," $redis.cluster.addresses -}}
{{- end -}}
{{- end -}}

{{- define "meshguard.redisEnv" -}}
{{- $redis := .Values.redis -}}
- name: REDIS_TYPE
  value: {{ include "meshguard.redisType" . }}
- name: REDIS_SOCKET_TYPE
  value: tcp
{{- with $redis.auth.existingSecret }}
- name: REDIS_AUTH
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $redis.auth.key }}
{{- end }}
{{- if and (eq $redis.mode "sentinel") $redis.sentinel.auth.existingSecret }}
- name: REDIS_SENTINEL_AUTH
  valueFrom:
    secretKeyRef:
      name: {{ $redis.sentinel.auth.existingSecret }}
      key: {{ $redis.sentinel.auth.key }}
{{- end }}
{{- if $redis.tls.enabled }}
- name: REDIS_TLS
  value: "true"
- name: REDIS_TLS_SKIP_HOSTNAME_VERIFICATION
  value: {{ $redis.tls.skipHostnameVerification | quote }}
{{- if $redis.tls.existingSecret }}
- name: REDIS_TLS_CACERT
  value: /etc/meshguard/redis-tls/ca.crt
{{- end }}
{{- end }}
{{- end -}}
