{{/* Names and labels shared by the templates. */}}

{{- define "ftjobs.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "ftjobs.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "ftjobs.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "ftjobs.serviceAccountName" -}}
{{- default (include "ftjobs.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "ftjobs.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ftjobs.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end -}}

{{- define "ftjobs.labels" -}}
{{ include "ftjobs.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ftjobs
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "ftjobs.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The trainer image: trainer.image, else trainer.repository at the chart's appVersion. */}}
{{- define "ftjobs.trainerImage" -}}
{{- default (printf "%s:%s" .Values.trainer.repository .Chart.AppVersion) .Values.trainer.image -}}
{{- end -}}

{{/*
What the controller does in a watched namespace, and nothing more (least privilege; keep
manifests/base/rbac.yaml identical, tests/integration/test_helm.py compares them):
- FineTuneJobs: watch them, patch annotations (cancel bookkeeping) and the status;
- the children of each attempt: create, read back (create-or-adopt), delete (cancel, TTL),
  and patch Jobs (suspend/resume); no ConfigMaps: the Job carries the trainer's config;
- pods: read only, to classify a failed attempt by exit code and to see pods stuck
  before starting (watched: that changes nothing in their Job);
- events: create (one per phase transition);
- the trainer's Role/RoleBinding: the controller may grant only what it holds itself
  (RBAC escalation prevention), which the FineTuneJob rules above cover.
No access to Secrets: pods reference the credentials Secret by name, the kubelet reads it.
*/}}
{{- define "ftjobs.rules" -}}
- apiGroups: ["ftjobs.dev"]
  resources: ["finetunejobs"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["ftjobs.dev"]
  resources: ["finetunejobs/status"]
  verbs: ["get", "patch"]
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["services", "serviceaccounts"]
  verbs: ["get", "create", "delete"]
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["get", "create", "delete"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
- apiGroups: ["rbac.authorization.k8s.io"]
  resources: ["roles", "rolebindings"]
  verbs: ["get", "create", "delete"]
# Kueue: read a queued Job's Workload (why it waits), set spec.active (spec.suspend).
- apiGroups: ["kueue.x-k8s.io"]
  resources: ["workloads"]
  verbs: ["get", "list", "patch"]
{{- end -}}
