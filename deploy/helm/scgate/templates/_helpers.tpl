{{/* Names and labels. */}}
{{- define "scgate.name" -}}
{{- .Values.nameOverride | default .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "scgate.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "scgate.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "scgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "scgate.name" . }}
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
{{ required "image.repository is required: the registry path of the scgate image (for example ghcr.io/YOUR-ORG/scgate; README.md, \"Install\")" .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "scgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{ .Values.serviceAccount.name | default (include "scgate.fullname" .) }}
{{- else -}}
{{ .Values.serviceAccount.name | default "default" }}
{{- end -}}
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

{{/* The dedicated CA issuer of the gateway's serving and callers' client certificates. */}}
{{- define "scgate.issuerName" -}}
{{ .Values.gateway.tls.certManager.issuer.name | default (printf "%s-%s-ca" .Release.Namespace (include "scgate.fullname" .) | trunc 63 | trimSuffix "-") }}
{{- end -}}

{{/* gateway.callerNamespaces as a JSON list; required in gateway mode. */}}
{{- define "scgate.callerNamespaces" -}}
{{- if not .Values.gateway.callerNamespaces -}}
{{- fail "gateway.callerNamespaces is required in gateway mode: list the namespaces whose workloads call scgate (the NetworkPolicy admits only them, and only they get client certificates from scgate's issuer)" -}}
{{- end -}}
{{ toJson .Values.gateway.callerNamespaces }}
{{- end -}}

{{/* identity.mtls.trustDomains; required when the gateway accepts client certificates. */}}
{{- define "scgate.trustDomains" -}}
{{- if not .Values.identity.mtls.trustDomains -}}
{{- fail "identity.mtls.trustDomains is required in gateway mode with client certificates (gateway.tls.clientCA): the SPIFFE trust domains of your callers, e.g. [\"prod.example\"]; a certificate from any other trust domain is refused" -}}
{{- end -}}
{{ toJson .Values.identity.mtls.trustDomains }}
{{- end -}}

{{/* The Service's DNS names, short to fully qualified. */}}
{{- define "scgate.serviceNames" -}}
{{- $n := include "scgate.fullname" . -}}
{{- $ns := .Release.Namespace -}}
{{- toJson (list $n (printf "%s.%s" $n $ns) (printf "%s.%s.svc" $n $ns) (printf "%s.%s.svc.%s" $n $ns .Values.gateway.clusterDomain)) -}}
{{- end -}}

{{/* server.hosts: the Service's names with and without its port, and the extra names. */}}
{{- define "scgate.hosts" -}}
{{- $port := int .Values.gateway.service.port -}}
{{- $hosts := list -}}
{{- range (include "scgate.serviceNames" . | fromJsonArray) -}}
{{- $hosts = append $hosts . -}}
{{- $hosts = append $hosts (printf "%s:%d" . $port) -}}
{{- end -}}
{{- range concat .Values.gateway.tls.certManager.extraDNSNames .Values.server.hosts -}}
{{- $hosts = append $hosts . -}}
{{- end -}}
{{- toJson ($hosts | uniq) -}}
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
{{- define "scgate.tracingHeadersDir" -}}/etc/scgate/tracing-headers{{- end -}}
{{- define "scgate.tracingCADir" -}}/etc/scgate/tracing-ca{{- end -}}
{{- define "scgate.adminAuthDir" -}}/etc/scgate/admin-auth{{- end -}}

{{/*
scgate.kv writes `toml_key = value` for each values key of .map that is set
(not null and not ""), in the order of .keys (a list of "valuesKey=toml_key").
Values are written as JSON, which TOML reads for strings, numbers, booleans
and lists of them.
*/}}
{{- define "scgate.kv" -}}
{{- $m := .map | default dict -}}
{{- range .keys -}}
{{- $pair := splitList "=" . -}}
{{- $k := index $pair 0 -}}
{{- if hasKey $m $k -}}
{{- $v := index $m $k -}}
{{- if not (or (kindIs "invalid" $v) (and (kindIs "string" $v) (eq $v ""))) }}
{{ index $pair 1 }} = {{ include "scgate.tomlValue" $v }}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* A value as TOML: integral numbers without a fraction, everything else as JSON. */}}
{{- define "scgate.tomlValue" -}}
{{- if and (kindIs "float64" .) (eq (float64 (int64 .)) .) -}}
{{ int64 . }}
{{- else -}}
{{ toJson . }}
{{- end -}}
{{- end -}}

{{/* config.toml (format: config.example.toml), or the raw `config` value as it is. */}}
{{- define "scgate.config" -}}
{{- if .Values.config -}}
{{ .Values.config }}
{{- else -}}
{{- include "scgate.structuredConfig" . -}}
{{- end -}}
{{- end -}}

{{- define "scgate.structuredConfig" -}}
{{- $v := .Values -}}
{{- $gateway := eq $v.mode "gateway" -}}
# scgate config rendered by the Helm chart (mode {{ $v.mode }}).
[server]
{{- if not $gateway }}
listen = "127.0.0.1:{{ int $v.sidecar.port }}"
tls = "off"
{{- else }}
listen = ":{{ int $v.gateway.port }}"
{{- if eq $v.gateway.tls.mode "acme" }}
tls = "acme"
{{- else }}
tls = "files"
cert_file = "{{ include "scgate.tlsDir" . }}/tls.crt"
key_file = "{{ include "scgate.tlsDir" . }}/tls.key"
{{- end }}
{{- if $v.gateway.tls.clientCA }}
client_ca_file = "{{ include "scgate.tlsDir" . }}/ca.crt"
client_auth = {{ $v.gateway.tls.clientAuth | quote }}
{{- end }}
public_url = {{ $v.server.publicURL | default (printf "https://%s.%s.svc" (include "scgate.fullname" .) .Release.Namespace) | quote }}
# The Host header values scgate answers; any other Host gets 421.
hosts = {{ include "scgate.hosts" . }}
{{- end }}
shutdown_delay = "{{ include "scgate.shutdownDelay" . }}s"
shutdown_timeout = "{{ int $v.shutdown.timeoutSeconds }}s"
{{- include "scgate.kv" (dict "map" $v.server "keys" (list "readHeaderTimeout=read_header_timeout" "readTimeout=read_timeout" "writeTimeout=write_timeout" "idleTimeout=idle_timeout" "maxHeaderBytes=max_header_bytes" "maxBodyBytes=max_body_bytes")) }}
{{- if and $gateway (eq $v.gateway.tls.mode "acme") }}

[server.acme]
{{- include "scgate.kv" (dict "map" $v.server.acme "keys" (list "domains=domains" "email=email" "ca=ca" "caRootsFile=ca_roots_file" "storage=storage" "httpChallengeListen=http_challenge_listen" "tlsALPNChallenge=tls_alpn_challenge")) }}
{{- end }}

[admin]
listen = ":{{ int $v.adminPort }}"
{{- with $v.admin }}
{{- if not .statusPage }}
status_page = false
{{- end }}
{{- if .basicAuthSecret }}
username = {{ .username | quote }}
password_file = "{{ include "scgate.adminAuthDir" $ }}/password"
{{- end }}
{{- end }}

[upstream]
url = {{ required "upstream.url is required: the broadcaster's origin, scheme://host:port (for example https://radio.example.com:1030)" $v.upstream.url | quote }}
{{- if $v.upstream.caConfigMap }}
ca_file = "{{ include "scgate.upstreamCADir" . }}/ca.crt"
{{- end }}
{{- include "scgate.kv" (dict "map" $v.upstream "keys" (list "serverName=server_name" "dialTimeout=dial_timeout" "tlsHandshakeTimeout=tls_handshake_timeout" "responseHeaderTimeout=response_header_timeout" "idleConnTimeout=idle_conn_timeout" "maxIdleConns=max_idle_conns" "allowPlainHTTP=allow_plain_http" "dangerouslySkipTLSVerify=dangerously_skip_tls_verify")) }}

[vault]
file = "{{ include "scgate.vaultDir" . }}/{{ $v.vault.key }}"
{{- include "scgate.kv" (dict "map" $v.vault "keys" (list "pollInterval=poll_interval" "ageIdentityFile=age_identity_file")) }}
{{- with $v.rotation }}

[rotation]
{{- include "scgate.kv" (dict "map" . "keys" (list "rejectionCooldown=rejection_cooldown" "replayBodyBytes=replay_body_bytes" "expiryWarnBefore=expiry_warn_before")) }}
{{- end }}

[identity]
{{- include "scgate.kv" (dict "map" $v.identity "keys" (list "order=order" "static=static" "trustedProxies=trusted_proxies")) }}
{{- if and $gateway $v.gateway.tls.clientCA }}

[identity.mtls]
source = {{ $v.identity.mtls.source | quote }}
trust_domains = {{ include "scgate.trustDomains" . }}
{{- end }}
{{- with $v.identity.jwt }}

[identity.jwt]
{{- include "scgate.kv" (dict "map" . "keys" (list "issuer=issuer" "audiences=audiences" "jwksFile=jwks_file" "jwksURL=jwks_url" "discoveryURL=discovery_url" "caFile=ca_file" "tokenFile=token_file" "leeway=leeway" "minRefreshInterval=min_refresh_interval" "maxAge=max_age")) }}
{{- end }}
{{- with $v.identity.header }}

[identity.header]
{{- include "scgate.kv" (dict "map" . "keys" (list "name=name" "format=format" "trustDomains=trust_domains")) }}
{{- end }}
{{- with $v.identity.cidr }}

[identity.cidr]
{{- range $net, $id := . }}
{{ $net | quote }} = {{ $id | quote }}
{{- end }}
{{- end }}

[limits]
{{- include "scgate.kv" (dict "map" $v.limits "keys" (list "rate=rate" "burst=burst" "concurrency=concurrency" "mode=mode" "maxWait=max_wait" "keyRate=key_rate" "keyBurst=key_burst" "maxUpstreamPause=max_upstream_pause" "backend=backend")) }}
{{- range $id, $l := $v.limits.callers }}

[limits.callers.{{ $id | quote }}]
{{- include "scgate.kv" (dict "map" $l "keys" (list "rate=rate" "burst=burst" "concurrency=concurrency" "mode=mode" "maxWait=max_wait")) }}
{{- end }}
{{- range $name, $l := $v.limits.keys }}

[limits.keys.{{ $name | quote }}]
{{- include "scgate.kv" (dict "map" $l "keys" (list "rate=rate" "burst=burst")) }}
{{- end }}
{{- with $v.limits.redis }}

[limits.redis]
{{- include "scgate.kv" (dict "map" . "keys" (list "address=address" "username=username" "passwordFile=password_file" "db=db" "timeout=timeout" "keyPrefix=key_prefix" "fallbackShare=fallback_share" "probeInterval=probe_interval")) }}
{{- end }}
{{- with $v.policy }}

[policy]
{{- include "scgate.kv" (dict "map" . "keys" (list "default=default")) }}
{{- with .sets }}

[policy.sets]
{{- range $name, $rules := . }}
{{ $name | quote }} = {{ toJson $rules }}
{{- end }}
{{- end }}
{{- with .callers }}

[policy.callers]
{{- range $id, $set := . }}
{{ $id | quote }} = {{ $set | quote }}
{{- end }}
{{- end }}
{{- end }}

[log]
{{- include "scgate.kv" (dict "map" $v.log "keys" (list "level=level" "format=format")) }}
{{- if $v.tracing.enabled }}

[tracing]
enabled = true
{{- include "scgate.kv" (dict "map" $v.tracing "keys" (list "endpoint=endpoint" "protocol=protocol" "insecure=insecure" "serviceName=service_name" "trustedCallers=trusted_callers" "trustProxies=trust_proxies" "maxQueueSize=max_queue_size")) }}
sample_ratio = {{ printf "%g" (float64 $v.tracing.sampleRatio) }}
{{- if $v.tracing.headersSecret }}
headers_file = "{{ include "scgate.tracingHeadersDir" . }}/headers"
{{- end }}
{{- if $v.tracing.caConfigMap }}
ca_file = "{{ include "scgate.tracingCADir" . }}/ca.crt"
{{- end }}
{{- with $v.tracing.resourceAttributes }}

[tracing.resource_attributes]
{{- range $k, $val := . }}
{{ $k | quote }} = {{ $val | quote }}
{{- end }}
{{- end }}
{{- end }}
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
  {{- with .Values.extraEnv }}
  env:
    {{- toYaml . | nindent 4 }}
  {{- end }}
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
    failureThreshold: {{ eq .Values.gateway.tls.mode "acme" | ternary 300 60 }}
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
    {{- if and (eq .Values.mode "gateway") (or (ne .Values.gateway.tls.mode "acme") .Values.gateway.tls.clientCA) }}
    - name: scgate-tls
      mountPath: {{ include "scgate.tlsDir" . }}
      readOnly: true
    {{- end }}
    {{- if .Values.upstream.caConfigMap }}
    - name: scgate-upstream-ca
      mountPath: {{ include "scgate.upstreamCADir" . }}
      readOnly: true
    {{- end }}
    {{- if and .Values.tracing.enabled .Values.tracing.headersSecret }}
    - name: scgate-tracing-headers
      mountPath: {{ include "scgate.tracingHeadersDir" . }}
      readOnly: true
    {{- end }}
    {{- if and .Values.tracing.enabled .Values.tracing.caConfigMap }}
    - name: scgate-tracing-ca
      mountPath: {{ include "scgate.tracingCADir" . }}
      readOnly: true
    {{- end }}
    {{- if .Values.admin.basicAuthSecret }}
    - name: scgate-admin-auth
      mountPath: {{ include "scgate.adminAuthDir" . }}
      readOnly: true
    {{- end }}
    {{- with .Values.extraVolumeMounts }}
    {{- toYaml . | nindent 4 }}
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
{{- if and (eq .Values.mode "gateway") (or (ne .Values.gateway.tls.mode "acme") .Values.gateway.tls.clientCA) }}
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
{{- if and .Values.tracing.enabled .Values.tracing.headersSecret }}
- name: scgate-tracing-headers
  secret:
    secretName: {{ .Values.tracing.headersSecret }}
    defaultMode: 0440
{{- end }}
{{- if and .Values.tracing.enabled .Values.tracing.caConfigMap }}
- name: scgate-tracing-ca
  configMap:
    name: {{ .Values.tracing.caConfigMap }}
{{- end }}
{{- if .Values.admin.basicAuthSecret }}
- name: scgate-admin-auth
  secret:
    secretName: {{ .Values.admin.basicAuthSecret }}
    defaultMode: 0440
{{- end }}
{{- with .Values.extraVolumes }}
{{ toYaml . }}
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

{{/* Scheduling settings shared by both Deployments. */}}
{{- define "scgate.scheduling" -}}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* A list of strings as CEL string literals, comma-separated. */}}
{{- define "scgate.celStrings" -}}
{{- $out := list -}}
{{- range . -}}
{{- $out = append $out (printf "'%s'" (. | replace "\\" "\\\\" | replace "'" "\\'")) -}}
{{- end -}}
{{- join ", " $out -}}
{{- end -}}
