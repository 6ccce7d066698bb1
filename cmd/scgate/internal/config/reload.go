package config

import (
	"reflect"
	"strings"
)

// RestartNeeded lists the settings (as dotted keys of the file) that differ
// between the running config and next and that SIGHUP cannot apply: every
// setting not tagged reload:"live" in this package's structs. The list is
// derived from the schema, so a new setting is covered the day it is added.
func RestartNeeded(running, next *Config) []string {
	var out []string
	diff(reflect.ValueOf(*running), reflect.ValueOf(*next), nil, &out)
	return out
}

func diff(a, b reflect.Value, path []string, out *[]string) {
	if a.Type() == reflect.TypeOf(Duration{}) {
		// "5s" written and 5s by default are the same setting.
		if a.Interface().(Duration).Duration != b.Interface().(Duration).Duration {
			*out = append(*out, strings.Join(path, "."))
		}
		return
	}
	if a.Kind() != reflect.Struct {
		if !reflect.DeepEqual(a.Interface(), b.Interface()) {
			*out = append(*out, strings.Join(path, "."))
		}
		return
	}
	t := a.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name := tomlName(f)
		if !f.IsExported() || name == "" || f.Tag.Get("reload") == "live" {
			continue
		}
		diff(a.Field(i), b.Field(i), append(path[:len(path):len(path)], name), out)
	}
}
