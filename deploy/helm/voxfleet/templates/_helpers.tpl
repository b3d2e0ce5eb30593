{{/* Names, labels and the pieces every role's pod shares. */}}

{{- define "voxfleet.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "voxfleet.fullname" -}}
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

{{- define "voxfleet.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The name of one role's objects: (dict "root" $ "role" "agent") */}}
{{- define "voxfleet.roleName" -}}
{{- printf "%s-%s" (include "voxfleet.fullname" .root | trunc 54 | trimSuffix "-") .role -}}
{{- end -}}

{{- define "voxfleet.selectorLabels" -}}
app.kubernetes.io/name: {{ include "voxfleet.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .role }}
{{- end -}}

{{- define "voxfleet.labels" -}}
helm.sh/chart: {{ include "voxfleet.chart" .root }}
{{ include "voxfleet.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: voxfleet
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "voxfleet.image" -}}
{{- $img := .Values.image -}}
{{- $tag := $img.tag | default (printf "%s%s" .Chart.AppVersion (ternary "-local" "" (eq $img.flavor "local"))) -}}
{{- if $img.digest -}}
{{- printf "%s@%s" $img.repository $img.digest -}}
{{- else -}}
{{- printf "%s:%s" $img.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* The secret files each role reads: file name -> setting (empty: a file
     named by another file, such as a hosted endpoint's key in endpoints.toml).
     The migration needs SECRET_KEY too: every process refuses the development
     key in prod. */}}
{{- define "voxfleet.secretFiles" -}}
{{- $v := .root.Values -}}
{{- $files := dict "secret-key" "SECRET_KEY" "database-url" "DATABASE_URL" -}}
{{- if ne .role "migration" -}}
{{- $_ := set $files "redis-url" "REDIS_URL" -}}
{{- end -}}
{{- if eq .role "monitor" -}}
{{- $_ := set $files "admin-api-key" "ADMIN_API_KEY" -}}
{{- $_ := set $files "scaling-token" "SCALING_TOKEN" -}}
{{- $_ := set $files "monitor-admin-password" "MONITOR_ADMIN_PASSWORD" -}}
{{- end -}}
{{- if eq .role "agent" -}}
{{- range $name, $e := $v.providers.endpoints -}}
{{- if $e.apiKeySecret -}}
{{- $_ := set $files (printf "endpoint-%s-key" $name) "" -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and (has .role (list "landing" "agent")) (ne $v.livekit.mode "none") -}}
{{- $_ := set $files "livekit-api-key" "LIVEKIT_API_KEY" -}}
{{- $_ := set $files "livekit-api-secret" "LIVEKIT_API_SECRET" -}}
{{- if eq $v.livekit.mode "cloud" -}}
{{- $_ := set $files "livekit-url" "LIVEKIT_URL" -}}
{{- end -}}
{{- end -}}
{{- toYaml $files -}}
{{- end -}}

{{/* Key Vault secret name of each file. */}}
{{- define "voxfleet.keyVaultObjects" -}}
{{- $o := .Values.secrets.azureKeyVault.objects -}}
secret-key: {{ $o.secretKey }}
database-url: {{ $o.databaseUrl }}
redis-url: {{ $o.redisUrl }}
admin-api-key: {{ $o.adminApiKey }}
scaling-token: {{ $o.scalingToken }}
monitor-admin-password: {{ $o.monitorAdminPassword }}
livekit-url: {{ $o.livekitUrl }}
livekit-api-key: {{ $o.livekitApiKey }}
livekit-api-secret: {{ $o.livekitApiSecret }}
livekit-keys: {{ $o.livekitKeys }}
redis-password: {{ $o.redisPassword }}
{{- range $name, $e := .Values.providers.endpoints }}
{{- if $e.apiKeySecret }}
endpoint-{{ $name }}-key: {{ $e.apiKeySecret }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The volume holding a role's secret files: (dict "root" $ "role" r "files" list) */}}
{{- define "voxfleet.secretsVolume" -}}
- name: secrets
{{- if eq .root.Values.secrets.provider "azureKeyVault" }}
  csi:
    driver: secrets-store.csi.k8s.io
    readOnly: true
    volumeAttributes:
      secretProviderClass: {{ include "voxfleet.roleName" . }}
{{- else }}
  secret:
    secretName: {{ .root.Values.secrets.existingSecret }}
    defaultMode: 0440
    items:
    {{- range .files }}
      - key: {{ . }}
        path: {{ . }}
    {{- end }}
{{- end }}
{{- end -}}

{{- define "voxfleet.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
fsGroup: {{ .Values.securityContext.fsGroup }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "voxfleet.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: true
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* /tmp and the data dir: the only writable paths. */}}
{{- define "voxfleet.writableVolumes" -}}
- name: tmp
  emptyDir:
    medium: Memory
    sizeLimit: {{ .Values.writableVolumes.tmpSizeLimit }}
- name: data
  emptyDir:
    sizeLimit: {{ .Values.writableVolumes.dataSizeLimit }}
{{- end -}}

{{- define "voxfleet.writableMounts" -}}
- name: tmp
  mountPath: /tmp
- name: data
  mountPath: /var/lib/voxfleet
- name: secrets
  mountPath: {{ .Values.secrets.mountPath }}
  readOnly: true
{{- end -}}

{{/* Settings every role gets, plus its secret files: (dict "root" $ "role" r) */}}
{{- define "voxfleet.env" -}}
{{- $v := .root.Values -}}
- name: VOXFLEET_ENV
  value: {{ $v.app.env | quote }}
- name: VOXFLEET_DATA_DIR
  value: /var/lib/voxfleet
- name: VOXFLEET_LOG_FORMAT
  value: json
- name: VOXFLEET_LOG_LEVEL
  value: {{ $v.app.logLevel | quote }}
{{- with $v.app.publicUrl }}
- name: VOXFLEET_PUBLIC_URL
  value: {{ . | quote }}
{{- end }}
{{- if and (has .role (list "landing" "agent")) (ne $v.livekit.mode "none") }}
- name: VOXFLEET_TRANSPORT
  value: livekit
{{- if eq $v.livekit.mode "selfhosted" }}
- name: VOXFLEET_LIVEKIT_URL
  value: {{ $v.livekit.selfhosted.publicUrl | quote }}
{{- end }}
{{- end }}
{{- range $file, $setting := (include "voxfleet.secretFiles" . | fromYaml) }}
{{- if $setting }}
- name: VOXFLEET_{{ $setting }}_FILE
  value: {{ printf "%s/%s" $v.secrets.mountPath $file | quote }}
{{- end }}
{{- end }}
{{- range $name, $value := $v.app.extraEnv }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end -}}

{{/* Pod labels of a role, with the workload identity label when it has one. */}}
{{- define "voxfleet.podLabels" -}}
{{ include "voxfleet.labels" . }}
{{- if (get .root.Values.workloadIdentity .role).clientId }}
azure.workload.identity/use: "true"
{{- end }}
{{- end -}}

{{/* Default topology spread of a role: zones, then nodes. */}}
{{- define "voxfleet.topologySpread" -}}
{{- $cfg := get .root.Values .role -}}
{{- if $cfg.topologySpreadConstraints -}}
{{ toYaml $cfg.topologySpreadConstraints }}
{{- else -}}
- maxSkew: 1
  topologyKey: topology.kubernetes.io/zone
  whenUnsatisfiable: {{ .root.Values.topologySpread.zone }}
  labelSelector:
    matchLabels:
      {{- include "voxfleet.selectorLabels" . | nindent 6 }}
  matchLabelKeys:
    - pod-template-hash
- maxSkew: 1
  topologyKey: kubernetes.io/hostname
  whenUnsatisfiable: {{ .root.Values.topologySpread.node }}
  labelSelector:
    matchLabels:
      {{- include "voxfleet.selectorLabels" . | nindent 6 }}
  matchLabelKeys:
    - pod-template-hash
{{- end -}}
{{- end -}}

{{/* The agents' endpoints.toml: each hosted endpoint of providers.endpoints,
     its key as a mounted secret file. JSON strings are TOML strings. */}}
{{- define "voxfleet.endpointsToml" -}}
{{- $v := .Values -}}
{{- range $name, $e := $v.providers.endpoints }}
[endpoint.{{ $name }}]
{{- range $key, $value := $e }}
{{- if ne $key "apiKeySecret" }}
{{ $key }} = {{ toJson $value }}
{{- end }}
{{- end }}
{{- if $e.apiKeySecret }}
api_key_file = {{ printf "%s/endpoint-%s-key" $v.secrets.mountPath $name | toJson }}
{{- end }}
{{ end }}
{{- end -}}

{{/* The auth of every hosted endpoint, as a YAML list. */}}
{{- define "voxfleet.endpointAuths" -}}
{{- $auths := list -}}
{{- range $name, $e := .Values.providers.endpoints -}}
{{- $auths = append $auths ($e.auth | default "key") -}}
{{- end -}}
{{- toYaml $auths -}}
{{- end -}}
