{{/* Where telegraf writes: the user's own InfluxDB (KOVENANT_INFLUXDB_URL), else the pipeline's. */}}
{{- define "kovenant.influxdbURL" -}}
{{- .Values.influxdb.url | default (printf "http://kovenant-influxdb.%s.svc:%v" .Release.Namespace .Values.influxdb.port) -}}
{{- end -}}
