{{/* Chart name, shortened to the 63 characters a DNS label allows. */}}
{{- define "chatbridge.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified name of every object: fullnameOverride, or <release>-<chart> (just <release> when it already holds the chart name). */}}
{{- define "chatbridge.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Chart name and version, as in the helm.sh/chart label. */}}
{{- define "chatbridge.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "chatbridge.labels" -}}
helm.sh/chart: {{ include "chatbridge.chart" . }}
{{ include "chatbridge.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: chatbridge
{{- end }}

{{/* Labels that select the pods (never change them on upgrade: a Deployment's selector is immutable). */}}
{{- define "chatbridge.selectorLabels" -}}
app.kubernetes.io/name: {{ include "chatbridge.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The ServiceAccount the pods run as. */}}
{{- define "chatbridge.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "chatbridge.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Name of the Secret the pods read their environment from: existingSecret, or the one this chart renders from .Values.secrets. Empty: none. */}}
{{- define "chatbridge.secretName" -}}
{{- if .Values.existingSecret }}
{{- .Values.existingSecret }}
{{- else if .Values.secrets }}
{{- include "chatbridge.fullname" . }}
{{- end }}
{{- end }}

{{/*
The config file, chatbridge.yaml, rendered from .Values.config. Secrets stay ${VAR} references filled from the environment.
With config.kafka, cluster.enabled defaults to true (replicas share the channels; the bridge refuses it without Kafka),
so scaling up later needs no config change; an explicit config.cluster.enabled wins.
*/}}
{{- define "chatbridge.configFile" -}}
{{- $cfg := deepCopy (.Values.config | default dict) }}
{{- if $cfg.kafka }}
{{- $cluster := $cfg.cluster | default dict }}
{{- if not (hasKey $cluster "enabled") }}
{{- $_ := set $cluster "enabled" true }}
{{- end }}
{{- $_ := set $cfg "cluster" $cluster }}
{{- end }}
{{- toYaml $cfg }}
{{- end }}

{{/*
Refuses settings that would break at run time:
- several replicas without Kafka or without config.cluster.enabled would each connect every channel (every event twice);
- a termination grace period the process cannot finish in: Kubernetes kills it before it has flushed.
*/}}
{{- define "chatbridge.validate" -}}
{{- $cfg := include "chatbridge.configFile" . | fromYaml }}
{{- $several := or .Values.autoscaling.enabled (gt (int .Values.replicaCount) 1) }}
{{- if and $several (not $cfg.kafka) }}
{{- fail "chatbridge: several replicas (replicaCount > 1 or autoscaling.enabled) need Kafka: set config.kafka (brokers). Without it every replica would connect every channel and publish every event once per replica." }}
{{- end }}
{{- if and $several (not (dig "cluster" "enabled" false $cfg)) }}
{{- fail "chatbridge: several replicas (replicaCount > 1 or autoscaling.enabled) need cluster mode: remove config.cluster.enabled: false (with config.kafka it defaults to true), so the replicas share the channels instead of each connecting every one." }}
{{- end }}
{{- if and .Values.persistence.enabled $several }}
{{- if not (has "ReadWriteMany" .Values.persistence.accessModes) }}
{{- fail "chatbridge: persistence with several replicas (replicaCount > 1 or autoscaling.enabled) shares one claim between pods: set persistence.accessModes to [ReadWriteMany] (a ReadWriteOnce volume attaches to one node only)." }}
{{- end }}
{{- if not (contains "${CHATBRIDGE_REPLICA}" (dig "deadLetter" "file" "" $cfg)) }}
{{- fail "chatbridge: persistence with several replicas shares /data: give each replica its own dead-letter file, e.g. config.deadLetter.file: /data/dead-letter-${CHATBRIDGE_REPLICA}.jsonl (the pod name)." }}
{{- end }}
{{- end }}
{{- $graceMs := int64 20000 }}
{{- if hasKey $cfg "shutdownGraceMs" }}{{ $graceMs = int64 $cfg.shutdownGraceMs }}{{ end }}
{{- $preStopMs := mul (int64 .Values.preStopSleepSeconds) 1000 }}
{{- $neededMs := add $graceMs 5000 $preStopMs }}
{{- $periodMs := mul (int64 .Values.terminationGracePeriodSeconds) 1000 }}
{{- if ge $neededMs $periodMs }}
{{- fail (printf "chatbridge: terminationGracePeriodSeconds (%d) must be more than preStopSleepSeconds (%d) + config.shutdownGraceMs/1000 (%s) + 5 s: on SIGTERM the process may take shutdownGraceMs + 5 s to exit, after the preStop sleep, and Kubernetes kills it at the end of the grace period. Raise terminationGracePeriodSeconds or lower config.shutdownGraceMs." (int64 .Values.terminationGracePeriodSeconds) (int64 .Values.preStopSleepSeconds) (divf $graceMs 1000 | toString)) }}
{{- end }}
{{- end }}

{{/*
PromQL label matchers that pick this release's series for the alerts: monitoring.prometheusRule.selector, or the
namespace and job the chart's ServiceMonitor gives them (the Prometheus Operator names the job after the Service).
*/}}
{{- define "chatbridge.metricsSelector" -}}
{{- .Values.monitoring.prometheusRule.selector | default (printf "namespace=%q, job=%q" .Release.Namespace (include "chatbridge.fullname" .)) }}
{{- end }}
