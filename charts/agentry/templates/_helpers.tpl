{{/* Chart name, overridable. */}}
{{- define "agentry.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name of every resource: fullnameOverride, else release-chart (or the release name when it already holds the chart name). */}}
{{- define "agentry.fullname" -}}
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

{{/* Selector labels: stable across upgrades. */}}
{{- define "agentry.selectorLabels" -}}
app.kubernetes.io/name: {{ include "agentry.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{/* Kubernetes recommended labels. */}}
{{- define "agentry.labels" -}}
{{ include "agentry.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: agentry
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "agentry.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "agentry.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "agentry.operatorImage" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "agentry.runtimeImage" -}}
{{- printf "%s:%s" .Values.runtimeImage.repository (default .Chart.AppVersion .Values.runtimeImage.tag) -}}
{{- end -}}

{{/*
Rules on namespaced resources in the watched namespaces. Kept identical to
operator/src/rbac.rs (API_ACCESS, scope Watched); a test compares the rendered chart with it.
*/}}
{{- define "agentry.watchedRules" -}}
# Watch Agents, and read the Agents that tools name.
- apiGroups: [agentry.dev]
  resources: [agents]
  verbs: [get, list, watch]
# Report conditions, endpoint and replicas.
- apiGroups: [agentry.dev]
  resources: [agents/status]
  verbs: [patch]
# Run each Agent's runtime pods (server-side apply: creating is authorised as create).
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch]
# Give each Agent its DNS name, and check the Services that http tools name.
- apiGroups: [""]
  resources: [services]
  verbs: [get, list, watch, create, patch]
# Write each runtime's configuration, and read systemPromptFrom.
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list, watch, create, patch]
# Each Agent's pod identity (IRSA); removed when the Agent names an existing account.
- apiGroups: [""]
  resources: [serviceaccounts]
  verbs: [get, list, watch, create, patch, delete]
# Keep Agents with several replicas serving through drains; removed at one replica.
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, watch, create, patch, delete]
# Record Events on Agents.
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end -}}

{{/* Rules on cluster-scoped resources. */}}
{{- define "agentry.clusterRules" -}}
# Wait until the Agent CRD is established (this CRD only).
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  resourceNames: [agents.agentry.dev]
  verbs: [get, list, watch]
{{- end -}}
