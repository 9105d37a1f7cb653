package config

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// EnvPrefix starts every environment variable that overrides a key.
const EnvPrefix = "CAMGATE_"

// envVar is one overridable key: its variable name, its yaml path and where
// it lives in Config.
type envVar struct {
	name  string
	path  string
	index []int
}

// envVars derives one variable per leaf key from the yaml tags: the path,
// upper-cased, dots as underscores (auth.viewer_jwt.hs256_secret →
// CAMGATE_AUTH_VIEWER_JWT_HS256_SECRET). Lists of structs (cameras) are one
// variable holding YAML.
func envVars() []envVar {
	var out []envVar
	var walk func(t reflect.Type, path string, index []int)
	walk = func(t reflect.Type, path string, index []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			name := yamlName(f)
			if name == "" {
				continue
			}
			p := joinPath(path, name)
			idx := append(append([]int(nil), index...), i)
			if f.Type.Kind() == reflect.Struct && f.Type != durationType {
				walk(f.Type, p, idx)
				continue
			}
			env := EnvPrefix + strings.ToUpper(strings.ReplaceAll(p, ".", "_"))
			out = append(out, envVar{name: env, path: p, index: idx})
		}
	}
	walk(reflect.TypeFor[Config](), "", nil)
	return out
}

// EnvNames lists every CAMGATE_* variable Load understands, sorted.
func EnvNames() []string {
	vars := envVars()
	names := make([]string, len(vars))
	for i, v := range vars {
		names[i] = v.name
	}
	sort.Strings(names)
	return names
}

// applyEnv overlays CAMGATE_* variables onto cfg. A variable set to the empty
// string sets the key to its zero value (e.g. CAMGATE_RTSP_UDP_RTP_LISTEN=
// disables UDP); one that names no key is an error.
func applyEnv(environ []string, cfg *Config) error {
	byName := make(map[string]envVar)
	for _, v := range envVars() {
		byName[v.name] = v
	}
	root := reflect.ValueOf(cfg).Elem()
	for _, kv := range environ {
		name, value, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, EnvPrefix) {
			continue
		}
		v, ok := byName[name]
		if !ok {
			return &FieldError{Key: name, Err: fmt.Errorf("%w: no such configuration variable", ErrUnknownKey)}
		}
		if err := setFromEnv(root.FieldByIndex(v.index), value, v.path); err != nil {
			return &FieldError{Key: name, Err: fmt.Errorf("(%s) %w", v.path, err)}
		}
	}
	return nil
}

func setFromEnv(f reflect.Value, value, path string) error {
	if f.Type() == durationType {
		if strings.TrimSpace(value) == "" {
			f.SetZero()
			return nil
		}
		d, err := ParseDuration(value)
		if err != nil {
			return err
		}
		f.Set(reflect.ValueOf(d))
		return nil
	}
	switch f.Kind() {
	case reflect.String:
		f.SetString(value)
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(value))
		if err != nil {
			return fmt.Errorf("invalid boolean %q (want true or false)", value)
		}
		f.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(value), 10, 64)
		if err != nil {
			return fmt.Errorf("invalid integer %q", value)
		}
		f.SetInt(n)
	case reflect.Slice:
		if f.Type().Elem().Kind() == reflect.String {
			f.Set(reflect.ValueOf(splitList(value)))
			return nil
		}
		return setYAMLFromEnv(f, value, path)
	default:
		return fmt.Errorf("cannot be set from the environment (%s)", f.Type())
	}
	return nil
}

// splitList splits a comma-separated list, dropping blanks; nil when empty.
func splitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// setYAMLFromEnv decodes a list of structs written as YAML, e.g.
// CAMGATE_CAMERAS='[{id: cam1, source: "builtin:demo"}]'.
func setYAMLFromEnv(f reflect.Value, value, path string) error {
	if strings.TrimSpace(value) == "" {
		f.SetZero()
		return nil
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(value), &doc); err != nil {
		return fmt.Errorf("invalid YAML: %w", trimYAMLPrefix(err))
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		f.SetZero()
		return nil
	}
	return decodeNode(doc.Content[0], f, path, 0)
}
