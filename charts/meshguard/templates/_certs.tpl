{{- define "meshguard.webhookTlsSecret" -}}
{{- printf "%s-tls" (include "meshguard.componentName" (dict "root" . "name" "webhook")) -}}
{{- end -}}

{{- define "meshguard.meshCASecret" -}}
{{- default (printf "%s-mesh-ca" (include "meshguard.fullname" .)) .Values.meshCA.existingSecret -}}
{{- end -}}

{{/* The DNS names of a component's Service, for a context dict {root, name}. */}}
{{- define "meshguard.serviceDnsNames" -}}
{{- $svc := include "meshguard.componentName" . -}}
{{- $ns := .root.Release.Namespace -}}
{{- list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) | toJson -}}
{{- end -}}

{{/* DNS names the API server may use for the webhook Service. */}}
{{- define "meshguard.webhookDnsNames" -}}
{{- include "meshguard.serviceDnsNames" (dict "root" . "name" "webhook") -}}
{{- end -}}

{{/* DNS names workloads use for the mesh CA's Service. */}}
{{- define "meshguard.caDnsNames" -}}
{{- include "meshguard.serviceDnsNames" (dict "root" . "name" "ca") -}}
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
