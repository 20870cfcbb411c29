// Command monitoring-check decodes Prometheus Operator objects (ServiceMonitor, PodMonitor,
// PrometheusRule) strictly into the Prometheus Operator's own Go types, refusing unknown fields
// and wrong types, for the chart tests (kubernetes-validate has no schemas for them). Standard
// input: a JSON array of objects. It prints one line per object, "ok <kind> <name>", or exits 1
// naming each object it refuses and why.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"sigs.k8s.io/yaml"
)

func target(apiVersion, kind string) any {
	if apiVersion != "monitoring.coreos.com/v1" {
		return nil
	}
	switch kind {
	case "ServiceMonitor":
		return &monitoringv1.ServiceMonitor{}
	case "PodMonitor":
		return &monitoringv1.PodMonitor{}
	case "PrometheusRule":
		return &monitoringv1.PrometheusRule{}
	}
	return nil
}

func main() {
	var objects []json.RawMessage
	if err := json.NewDecoder(os.Stdin).Decode(&objects); err != nil {
		fmt.Fprintln(os.Stderr, "monitoring-check: standard input is not a JSON array:", err)
		os.Exit(2)
	}
	failed := false
	for i, raw := range objects {
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := json.Unmarshal(raw, &head); err != nil {
			fmt.Printf("object %d: %v\n", i, err)
			failed = true
			continue
		}
		into := target(head.APIVersion, head.Kind)
		if into == nil {
			fmt.Printf("%s %s: not a Prometheus Operator kind this checks (%s)\n", head.Kind, head.Metadata.Name, head.APIVersion)
			failed = true
			continue
		}
		if err := yaml.UnmarshalStrict(raw, into); err != nil {
			fmt.Printf("%s %s: %v\n", head.Kind, head.Metadata.Name, err)
			failed = true
			continue
		}
		fmt.Printf("ok %s %s\n", head.Kind, head.Metadata.Name)
	}
	if failed {
		os.Exit(1)
	}
}
