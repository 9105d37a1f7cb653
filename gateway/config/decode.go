package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// maxYAMLDepth bounds recursion through the document; the configuration is
// only a few levels deep, so anything deeper is an error, not a stack risk.
const maxYAMLDepth = 8

var durationType = reflect.TypeFor[Duration]()

// decodeYAML overlays the YAML document in data onto cfg: keys present in the
// file replace the value already there, absent keys keep it.
func decodeYAML(data []byte, cfg *Config) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // only comments
		}
		return fmt.Errorf("yaml: %w", trimYAMLPrefix(err))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return errors.New("yaml: the file must hold exactly one document")
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return nil
		}
		root = root.Content[0]
	}
	return decodeNode(root, reflect.ValueOf(cfg).Elem(), "", 0)
}

// decodeNode decodes n into v, recursing into structs and slices of structs
// so that every error carries the full key path.
func decodeNode(n *yaml.Node, v reflect.Value, path string, depth int) error {
	if depth > maxYAMLDepth {
		return fieldErrorf(path, "line %d: nested too deeply", n.Line)
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return fieldErrorf(path, "line %d: bad alias", n.Line)
		}
		return decodeNode(n.Alias, v, path, depth+1)
	}
	isNull := n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
	switch {
	case v.Kind() == reflect.Struct && v.Type() != durationType:
		if isNull {
			return nil // "rtsp:" with nothing under it keeps the defaults
		}
		return decodeStruct(n, v, path, depth)
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Struct:
		return decodeStructSlice(n, v, path, depth, isNull)
	}
	if isNull {
		v.SetZero()
		return nil
	}
	if v.Kind() == reflect.Slice && n.Kind != yaml.SequenceNode {
		return fieldErrorf(path, "line %d: expected a list, got a %s", n.Line, kindName(n))
	}
	if v.Kind() != reflect.Slice && v.Type() != durationType && n.Kind != yaml.ScalarNode {
		return fieldErrorf(path, "line %d: expected a single value, got a %s", n.Line, kindName(n))
	}
	fresh := reflect.New(v.Type())
	if err := n.Decode(fresh.Interface()); err != nil {
		return &FieldError{Key: path, Err: trimYAMLPrefix(err)}
	}
	if v.Kind() == reflect.Slice && fresh.Elem().Len() == 0 {
		v.SetZero() // [] and an absent list compare and print the same
		return nil
	}
	v.Set(fresh.Elem())
	return nil
}

func decodeStruct(n *yaml.Node, v reflect.Value, path string, depth int) error {
	if n.Kind != yaml.MappingNode {
		return fieldErrorf(orRoot(path), "line %d: expected a mapping of keys, got a %s", n.Line, kindName(n))
	}
	fields := yamlFields(v.Type())
	seen := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return fieldErrorf(orRoot(path), "line %d: keys must be plain names", k.Line)
		}
		key := joinPath(path, k.Value)
		idx, ok := fields[k.Value]
		if !ok {
			return &FieldError{Key: key, Err: fmt.Errorf("line %d: %w", k.Line, ErrUnknownKey)}
		}
		if line, dup := seen[k.Value]; dup {
			return fieldErrorf(key, "line %d: duplicate key (first on line %d)", k.Line, line)
		}
		seen[k.Value] = k.Line
		if err := decodeNode(val, v.Field(idx), key, depth+1); err != nil {
			return err
		}
	}
	return nil
}

func decodeStructSlice(n *yaml.Node, v reflect.Value, path string, depth int, isNull bool) error {
	if isNull {
		v.SetZero()
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		return fieldErrorf(path, "line %d: expected a list, got a %s", n.Line, kindName(n))
	}
	if len(n.Content) == 0 {
		v.SetZero()
		return nil
	}
	out := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		if err := decodeNode(item, out.Index(i), fmt.Sprintf("%s[%d]", path, i), depth+1); err != nil {
			return err
		}
	}
	v.Set(out)
	return nil
}

// yamlFields maps each yaml tag name of struct type t to its field index.
func yamlFields(t reflect.Type) map[string]int {
	m := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		if name := yamlName(t.Field(i)); name != "" {
			m[name] = i
		}
	}
	return m
}

func yamlName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" {
		return ""
	}
	return name
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func orRoot(path string) string {
	if path == "" {
		return "(document)"
	}
	return path
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		return "value"
	case yaml.AliasNode:
		return "alias"
	}
	return "document"
}

// trimYAMLPrefix drops yaml.v3's "yaml: unmarshal errors:\n  " framing so a
// FieldError reads on one line.
func trimYAMLPrefix(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return errors.New(strings.Join(te.Errors, "; "))
	}
	return errors.New(strings.TrimPrefix(err.Error(), "yaml: "))
}
