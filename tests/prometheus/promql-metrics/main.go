// Command promql-metrics prints the metric names that PromQL expressions select, read with
// Prometheus' own parser, for the chart tests: they check each name against what the operator
// and the runtime export. Standard input: a JSON array of expressions. Standard output: a JSON
// array with, for each expression in order, {"metrics": [...]} or {"error": "..."} (a syntax
// error, or a selector that names no metric).
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

type result struct {
	Metrics []string `json:"metrics,omitempty"`
	Error   string   `json:"error,omitempty"`
}

func names(p parser.Parser, input string) result {
	expr, err := p.ParseExpr(input)
	if err != nil {
		return result{Error: err.Error()}
	}
	var found []string
	var unnamed string
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		vs, ok := node.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		for _, m := range vs.LabelMatchers {
			if name == "" && m.Name == labels.MetricName && m.Type == labels.MatchEqual {
				name = m.Value
			}
		}
		if name == "" {
			unnamed = vs.String()
		} else if !slices.Contains(found, name) {
			found = append(found, name)
		}
		return nil
	})
	if unnamed != "" {
		return result{Error: fmt.Sprintf("the selector %s names no metric", unnamed)}
	}
	slices.Sort(found)
	return result{Metrics: found}
}

func main() {
	var exprs []string
	if err := json.NewDecoder(os.Stdin).Decode(&exprs); err != nil {
		fmt.Fprintln(os.Stderr, "promql-metrics: standard input is not a JSON array of strings:", err)
		os.Exit(2)
	}
	p := parser.NewParser(parser.Options{})
	out := make([]result, 0, len(exprs))
	for _, e := range exprs {
		out = append(out, names(p, e))
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, "promql-metrics:", err)
		os.Exit(1)
	}
}
