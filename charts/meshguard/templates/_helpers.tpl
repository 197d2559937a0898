{{/*
Names. Every object is "<fullname>-<component>"; the fullname follows the usual Helm rules.
*/}}
{{- define "meshguard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "meshguard.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* "<fullname>-<component>", for a context dict {root, name}. */}}
{{- define "meshguard.componentName" -}}
{{- printf "%s-%s" (include "meshguard.fullname" .root) .name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "meshguard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "meshguard.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{- define "meshguard.labels" -}}
{{ include "meshguard.selectorLabels" . }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: meshguard
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* metadata for a namespaced object of a component: name, namespace, labels. */}}
{{- define "meshguard.metadata" -}}
name: {{ include "meshguard.componentName" . }}
namespace: {{ .root.Release.Namespace }}
labels:
  {{- include "meshguard.labels" . | nindent 2 }}
{{- end -}}

{{/*
The values block of a component: its own name, except the mesh CA ("ca"), configured under
meshCA. Use as (index .root.Values (include "meshguard.valuesKey" .name)).
*/}}
{{- define "meshguard.valuesKey" -}}
{{- ternary "meshCA" . (eq . "ca") -}}
{{- end -}}

{{/* Components whose pods call the Kubernetes API and so get a ServiceAccount token. */}}
{{- define "meshguard.usesApi" -}}
{{- has . (list "webhook" "ca") -}}
{{- end -}}

{{- define "meshguard.serviceAccountName" -}}
{{- $sa := (index .root.Values (include "meshguard.valuesKey" .name)).serviceAccount -}}
{{- if $sa.create -}}
{{- default (include "meshguard.componentName" .) $sa.name -}}
{{- else -}}
{{- default "default" $sa.name -}}
{{- end -}}
{{- end -}}

{{/* registry/repository[:tag][@digest] from an image block; tag defaults to appVersion. */}}
{{- define "meshguard.imageRef" -}}
{{- $image := .image -}}
{{- $ref := $image.repository -}}
{{- if $image.registry }}{{ $ref = printf "%s/%s" $image.registry $image.repository }}{{ end -}}
{{- if and (hasKey $image "digest") $image.digest -}}
{{- printf "%s@%s" $ref $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $ref (default .root.Chart.AppVersion $image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The components whose Deployments are rendered (the three services, the mesh CA), in a fixed order. */}}
{{- define "meshguard.components" -}}
{{- $out := list -}}
{{- range $name := list "authz" "ratelimit" "webhook" "ca" -}}
{{- if (index $.Values (include "meshguard.valuesKey" $name)).enabled }}{{ $out = append $out $name }}{{ end -}}
{{- end -}}
{{- join "," $out -}}
{{- end -}}

{{/*
Pod-level settings every meshguard Deployment shares: service account, security context,
scheduling (anti-affinity / zone spread by default), pull secrets.
*/}}
{{- define "meshguard.podSpec" -}}
{{- $v := index .root.Values (include "meshguard.valuesKey" .name) -}}
serviceAccountName: {{ include "meshguard.serviceAccountName" . }}
automountServiceAccountToken: {{ include "meshguard.usesApi" .name }}
securityContext:
  {{- toYaml .root.Values.podSecurityContext | nindent 2 }}
terminationGracePeriodSeconds: {{ $v.terminationGracePeriodSeconds }}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with $v.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- $ha := .root.Values.highAvailability }}
affinity:
{{- if $v.affinity }}
  {{- toYaml $v.affinity | nindent 2 }}
{{- else }}
  podAntiAffinity:
  {{- if eq $ha.podAntiAffinity "hard" }}
    requiredDuringSchedulingIgnoredDuringExecution:
      - topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "meshguard.selectorLabels" . | nindent 12 }}
  {{- else }}
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels:
              {{- include "meshguard.selectorLabels" . | nindent 14 }}
  {{- end }}
{{- end }}
{{- if $v.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml $v.topologySpreadConstraints | nindent 2 }}
{{- else if $ha.zoneSpread }}
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: topology.kubernetes.io/zone
    whenUnsatisfiable: {{ ternary "DoNotSchedule" "ScheduleAnyway" (eq $ha.podAntiAffinity "hard") }}
    labelSelector:
      matchLabels:
        {{- include "meshguard.selectorLabels" . | nindent 8 }}
{{- end }}
{{- end -}}

{{/*
Container settings every meshguard container shares: image, security context, resources, the
admin port and probes on its /healthz and /readyz, a writable /tmp.
*/}}
{{- define "meshguard.container" -}}
{{- $v := index .root.Values (include "meshguard.valuesKey" .name) -}}
name: {{ .name }}
image: {{ include "meshguard.imageRef" (dict "root" .root "image" .root.Values.image) }}
imagePullPolicy: {{ .root.Values.image.pullPolicy }}
securityContext:
  {{- toYaml .root.Values.containerSecurityContext | nindent 2 }}
resources:
  {{- toYaml $v.resources | nindent 2 }}
{{ include "meshguard.probes" "http-admin" }}
{{- end -}}

{{/* startup / liveness on /healthz and readiness on /readyz of the named admin port. */}}
{{- define "meshguard.probes" -}}
startupProbe:
  httpGet:
    path: /healthz
    port: {{ . }}
  periodSeconds: 2
  failureThreshold: 30
livenessProbe:
  httpGet:
    path: /healthz
    port: {{ . }}
  periodSeconds: 10
  timeoutSeconds: 2
  failureThreshold: 3
readinessProbe:
  httpGet:
    path: /readyz
    port: {{ . }}
  periodSeconds: 5
  timeoutSeconds: 2
  failureThreshold: 2
{{- end -}}

{{/* Environment every service reads, plus the component's extraEnv. */}}
{{- define "meshguard.commonEnv" -}}
- name: MESHGUARD_LOG_LEVEL
  value: {{ .root.Values.logLevel | quote }}
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
{{- with (index .root.Values (include "meshguard.valuesKey" .name)).extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* In-cluster DNS name of a component's Service. */}}
{{- define "meshguard.serviceHost" -}}
{{- printf "%s.%s.svc.cluster.local" (include "meshguard.componentName" .) .root.Release.Namespace -}}
{{- end -}}

{{/* The extensionProviders entry Istio needs to call meshguard authz (meshConfig fragment). */}}
{{- define "meshguard.extensionProvider" -}}
{{- $authz := dict "root" . "name" "authz" -}}
- name: {{ .Values.istio.providerName }}
{{- if eq .Values.istio.providerFlavor "http" }}
  envoyExtAuthzHttp:
    service: {{ include "meshguard.serviceHost" $authz }}
    port: {{ .Values.authz.ports.http }}
    includeRequestHeadersInCheck:
      {{- toYaml .Values.istio.includeRequestHeadersInCheck | nindent 6 }}
{{- else }}
  envoyExtAuthzGrpc:
    service: {{ include "meshguard.serviceHost" $authz }}
    port: {{ .Values.authz.ports.grpc }}
{{- end }}
{{- end -}}
