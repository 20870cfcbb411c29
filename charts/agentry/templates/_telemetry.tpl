{{/*
The operator's telemetry variables (values telemetry.*), which it checks at start and sets in
every runtime container. Contradictions fail here already, with the same rules as the operator
(operator/src/config/telemetry.rs), so `helm install` says what is wrong instead of a pod that
does not start.
*/}}
{{- define "agentry.telemetryEnv" -}}
{{- with .Values.telemetry -}}
{{- $arg := toString .samplerArg -}}
{{- if not .otlpEndpoint -}}
{{- range $name, $set := dict "telemetry.headers" (not (empty .headers)) "telemetry.sampler" (not (empty .sampler)) "telemetry.samplerArg" (ne $arg "") "telemetry.captureContent" .captureContent -}}
{{- if $set -}}
{{- fail (printf "%s needs telemetry.otlpEndpoint: without an endpoint the runtimes export nothing" $name) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and (ne $arg "") (not (hasSuffix "traceidratio" .sampler)) -}}
{{- fail "telemetry.samplerArg needs telemetry.sampler traceidratio or parentbased_traceidratio: no other sampler takes an argument" -}}
{{- end -}}
{{- if and (eq $arg "") (hasSuffix "traceidratio" .sampler) -}}
{{- fail (printf "telemetry.sampler %s needs telemetry.samplerArg, the ratio of traces kept (0 to 1)" .sampler) -}}
{{- end -}}
{{- with .otlpEndpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- with .headers }}
{{- $pairs := list }}
{{- range $name, $value := . }}
{{- $pairs = append $pairs (printf "%s=%s" $name $value) }}
{{- end }}
- name: OTEL_EXPORTER_OTLP_HEADERS
  value: {{ join "," $pairs | quote }}
{{- end }}
{{- with .sampler }}
- name: OTEL_TRACES_SAMPLER
  value: {{ . | quote }}
{{- end }}
{{- if ne $arg "" }}
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ $arg | quote }}
{{- end }}
{{- if .captureContent }}
- name: OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT
  value: "true"
{{- end }}
{{- with .modelPrices }}
{{- /* As numbers, also where helm --set gave strings ("0.25"). */}}
{{- $prices := dict }}
{{- range $model, $price := . }}
{{- $numbers := dict }}
{{- range $field, $value := $price }}
{{- $_ := set $numbers $field (float64 $value) }}
{{- end }}
{{- $_ := set $prices $model $numbers }}
{{- end }}
- name: AGENTRY_MODEL_PRICES
  value: {{ toJson $prices | quote }}
{{- end }}
{{- end -}}
{{- end -}}
