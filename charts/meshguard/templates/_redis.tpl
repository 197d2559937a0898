{{/*
How ratelimit reaches Redis, with the service's flags (named after envoyproxy/ratelimit's
settings): --redis-type single|sentinel|cluster and --redis-url as host:port,
"master,sentinel1,sentinel2" or "node1,node2". Passwords come from Secrets as REDIS_AUTH /
REDIS_SENTINEL_AUTH environment variables, never as flags.
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

{{- define "meshguard.redisArgs" -}}
{{- $tls := .Values.redis.tls -}}
- --redis-type={{ include "meshguard.redisType" . }}
- --redis-url={{ include "meshguard.redisUrl" . }}
{{- if $tls.enabled }}
- --redis-tls
{{- if $tls.skipHostnameVerification }}
- --redis-tls-skip-hostname-verification
{{- end }}
{{- if $tls.existingSecret }}
- --redis-tls-cacert=/etc/meshguard/redis-tls/ca.crt
{{- if $tls.clientCertificate }}
- --redis-tls-client-cert=/etc/meshguard/redis-tls/tls.crt
- --redis-tls-client-key=/etc/meshguard/redis-tls/tls.key
{{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "meshguard.redisSecretEnv" -}}
{{- $redis := .Values.redis -}}
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
{{- end -}}
