{{/* Names and labels. */}}
{{- define "scgate.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "scgate.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: {{ .Values.mode }}
{{- end -}}

{{- define "scgate.labels" -}}
{{ include "scgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "scgate.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "scgate.vaultSecret" -}}
{{ .Values.vault.secretName | default (printf "%s-vault" (include "scgate.fullname" .)) }}
{{- end -}}

{{- define "scgate.tlsSecret" -}}
{{ .Values.gateway.tls.secretName | default (printf "%s-tls" (include "scgate.fullname" .)) }}
{{- end -}}

{{- define "scgate.appName" -}}
{{ .Values.sidecar.app.name | default (include "scgate.fullname" .) }}
{{- end -}}

{{/* shutdown_delay: a native sidecar stops after its app, so it needs none. */}}
{{- define "scgate.shutdownDelay" -}}
{{ if eq .Values.mode "sidecar" }}0{{ else }}{{ int .Values.shutdown.delaySeconds }}{{ end }}
{{- end -}}

{{/* terminationGracePeriodSeconds: scgate's delay and drain, a margin, and in sidecar mode the app's own shutdown before scgate's. */}}
{{- define "scgate.grace" -}}
{{- $s := add (include "scgate.shutdownDelay" . | int) .Values.shutdown.timeoutSeconds .Values.shutdown.graceMarginSeconds -}}
{{- if eq .Values.mode "sidecar" }}{{ $s = add $s .Values.sidecar.app.terminationSeconds }}{{ end -}}
{{ $s }}
{{- end -}}

{{/* Paths inside the container: each volume in a folder of its own. */}}
{{- define "scgate.configDir" -}}/etc/scgate/config{{- end -}}
{{- define "scgate.vaultDir" -}}/etc/scgate/vault{{- end -}}
{{- define "scgate.tlsDir" -}}/etc/scgate/tls{{- end -}}
{{- define "scgate.upstreamCADir" -}}/etc/scgate/upstream-ca{{- end -}}

{{/* config.toml (format: config.example.toml). */}}
{{- define "scgate.config" -}}
{{- $v := .Values -}}
# scgate config rendered by the Helm chart (mode {{ $v.mode }}).
[server]
{{- if eq $v.mode "sidecar" }}
listen = "127.0.0.1:{{ int $v.sidecar.port }}"
tls = "off"
{{- else }}
listen = ":{{ int $v.gateway.port }}"
tls = "files"
cert_file = "{{ include "scgate.tlsDir" . }}/tls.crt"
key_file = "{{ include "scgate.tlsDir" . }}/tls.key"
{{- if $v.gateway.tls.clientCA }}
client_ca_file = "{{ include "scgate.tlsDir" . }}/ca.crt"
client_auth = {{ $v.gateway.tls.clientAuth | quote }}
{{- end }}
public_url = {{ $v.gateway.publicURL | default (printf "https://%s.%s.svc" (include "scgate.fullname" .) .Release.Namespace) | quote }}
{{- end }}
shutdown_delay = "{{ include "scgate.shutdownDelay" . }}s"
shutdown_timeout = "{{ int $v.shutdown.timeoutSeconds }}s"

[admin]
listen = ":{{ int $v.adminPort }}"

[upstream]
url = {{ required "upstream.url is required" $v.upstream.url | quote }}
{{- with $v.upstream.serverName }}
server_name = {{ . | quote }}
{{- end }}
{{- if $v.upstream.caConfigMap }}
ca_file = "{{ include "scgate.upstreamCADir" . }}/ca.crt"
{{- end }}
response_header_timeout = {{ $v.upstream.responseHeaderTimeout | quote }}
max_idle_conns = {{ int $v.upstream.maxIdleConns }}

[vault]
file = "{{ include "scgate.vaultDir" . }}/{{ $v.vault.key }}"
poll_interval = {{ $v.vault.pollInterval | quote }}

[identity]
{{- with $v.identity.order }}
order = {{ toJson . }}
{{- end }}
{{- if $v.identity.static }}
static = {{ $v.identity.static | quote }}
{{- end }}
{{- if eq $v.mode "gateway" }}

[identity.mtls]
source = {{ $v.identity.mtls.source | quote }}
trust_domains = {{ $v.identity.mtls.trustDomains | default list | toJson }}
{{- end }}
{{- with $v.identity.cidr }}

[identity.cidr]
{{- range $net, $id := . }}
{{ $net | quote }} = {{ $id | quote }}
{{- end }}
{{- end }}

[limits]
rate = {{ float64 $v.limits.rate }}
burst = {{ int $v.limits.burst }}

[log]
level = {{ $v.log.level | quote }}
format = {{ $v.log.format | quote }}
{{- end -}}

{{/*
The scgate container. In sidecar mode it is a native sidecar: an
initContainers entry with restartPolicy: Always. App charts include it:
  initContainers:
    {{- include "scgate.sidecar.container" .Subcharts.scgate | nindent 4 }}
*/}}
{{- define "scgate.container" -}}
- name: scgate
  image: {{ include "scgate.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  {{- if eq .Values.mode "sidecar" }}
  restartPolicy: Always
  {{- end }}
  args: ["run", "--config", "{{ include "scgate.configDir" . }}/config.toml"]
  ports:
    {{- if eq .Values.mode "gateway" }}
    - name: https
      containerPort: {{ int .Values.gateway.port }}
      protocol: TCP
    {{- end }}
    - name: scgate-admin
      containerPort: {{ int .Values.adminPort }}
      protocol: TCP
  startupProbe:
    httpGet:
      path: /readyz
      port: scgate-admin
    periodSeconds: 1
    failureThreshold: 60
  readinessProbe:
    httpGet:
      path: /readyz
      port: scgate-admin
    periodSeconds: 2
    failureThreshold: 1
  livenessProbe:
    httpGet:
      path: /healthz
      port: scgate-admin
    periodSeconds: 10
    failureThreshold: 3
  {{- with (eq .Values.mode "sidecar" | ternary .Values.sidecar.resources .Values.gateway.resources) }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    runAsNonRoot: true
    runAsUser: 65532
    runAsGroup: 65532
    readOnlyRootFilesystem: true
    allowPrivilegeEscalation: false
    capabilities:
      drop: ["ALL"]
    seccompProfile:
      type: RuntimeDefault
  volumeMounts:
    - name: scgate-config
      mountPath: {{ include "scgate.configDir" . }}
      readOnly: true
    - name: scgate-vault
      mountPath: {{ include "scgate.vaultDir" . }}
      readOnly: true
    {{- if eq .Values.mode "gateway" }}
    - name: scgate-tls
      mountPath: {{ include "scgate.tlsDir" . }}
      readOnly: true
    {{- end }}
    {{- if .Values.upstream.caConfigMap }}
    - name: scgate-upstream-ca
      mountPath: {{ include "scgate.upstreamCADir" . }}
      readOnly: true
    {{- end }}
{{- end -}}

{{/* The volumes the scgate container mounts: the vault Secret whole (no subPath). */}}
{{- define "scgate.volumes" -}}
- name: scgate-config
  configMap:
    name: {{ include "scgate.fullname" . }}
- name: scgate-vault
  secret:
    secretName: {{ include "scgate.vaultSecret" . }}
    defaultMode: 0440
{{- if eq .Values.mode "gateway" }}
- name: scgate-tls
  secret:
    secretName: {{ include "scgate.tlsSecret" . }}
    defaultMode: 0440
{{- end }}
{{- if .Values.upstream.caConfigMap }}
- name: scgate-upstream-ca
  configMap:
    name: {{ .Values.upstream.caConfigMap }}
{{- end }}
{{- end -}}

{{/* For app charts that depend on this chart with mode: sidecar. */}}
{{- define "scgate.sidecar.container" -}}
{{ include "scgate.container" . }}
{{- end -}}
{{- define "scgate.sidecar.volumes" -}}
{{ include "scgate.volumes" . }}
{{- end -}}

{{/* Pod-level security: non-root, the group of the Secret files, seccomp. */}}
{{- define "scgate.podSecurityContext" -}}
runAsNonRoot: true
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}
