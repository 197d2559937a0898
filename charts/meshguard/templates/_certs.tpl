{{- define "meshguard.webhookTlsSecret" -}}
{{- printf "%s-tls" (include "meshguard.componentName" (dict "root" . "name" "webhook")) -}}
{{- end -}}

{{- define "meshguard.meshCASecret" -}}
{{- default (printf "%s-mesh-ca" (include "meshguard.fullname" .)) .Values.meshCA.existingSecret -}}
{{- end -}}

{{/* DNS names the API server may use for the webhook Service. */}}
{{- define "meshguard.webhookDnsNames" -}}
{{- $svc := include "meshguard.componentName" (dict "root" . "name" "webhook") -}}
{{- $ns := .Release.Namespace -}}
{{- list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) | toJson -}}
{{- end -}}

{{/*
A Secret's data, reused across upgrades when it already exists (lookup) so that certificates and
the caBundle stay stable; empty under `helm template` / --dry-run, where a new one is generated.
*/}}
{{- define "meshguard.existingSecretData" -}}
{{- $secret := lookup "v1" "Secret" .namespace .name -}}
{{- if and $secret $secret.data -}}
{{- toJson $secret.data -}}
{{- else -}}
{}
{{- end -}}
{{- end -}}
