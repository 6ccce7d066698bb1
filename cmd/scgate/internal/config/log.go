package config

import (
	"fmt"
	"slices"
)

// Log is [log]: zap's level and format.
type Log struct {
	Level  string `toml:"level"`
	Format string `toml:"format"`
}

func (l *Log) defaults() {
	l.Level = orString(l.Level, "info")
	l.Format = orString(l.Format, "json")
}

func (l Log) validate(p *problems) {
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, l.Level) {
		p.add(fmt.Sprintf("%q: use debug, info, warn or error", l.Level), "log", "level")
	}
	if l.Format != "json" && l.Format != "console" {
		p.add(fmt.Sprintf("%q: use json or console", l.Format), "log", "format")
	}
}
