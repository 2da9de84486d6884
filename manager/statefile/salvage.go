package statefile

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
)

// Salvage recovers a T from JSON that was cut short or damaged part-way:
// it reads up to the first syntax error, closes what is open, and keeps
// every entry that was complete before it.
//
// What counts as complete follows T's shape. An entry of a collection (a
// map value, a slice element) is all or nothing: a model's measured size
// whose record was cut in the middle is dropped, not half-filled. The
// document and the structs on the way to its collections are containers:
// cut short, they keep the fields they got. A number that runs up to the
// cut is dropped, as it may have lost digits ("4096" cut to "40").
//
// ok reports whether anything at all was recovered.
func Salvage[T any](data []byte) (v T, ok bool) {
	s := salvager{dec: json.NewDecoder(bytes.NewReader(data)), end: int64(len(data))}
	s.dec.UseNumber()
	t := reflect.TypeOf(&v).Elem()
	out, _ := s.value(t)
	if out == nil {
		return v, false
	}
	// A value of the wrong shape (a list where T has a map) fills what
	// fits and leaves the rest zero, as encoding/json does.
	_ = json.Unmarshal(out, &v)
	return v, !reflect.ValueOf(&v).Elem().IsZero()
}

type salvager struct {
	dec *json.Decoder
	end int64 // len(data): a number that runs up to it may be cut
}

// value reads one value of type t (nil: unknown, kept only if whole) and
// returns it re-encoded, and whether it was read to its end. A cut
// container comes back closed over its complete entries; the caller
// decides whether a cut value is kept (keepCut).
func (s *salvager) value(t reflect.Type) (out []byte, whole bool) {
	tok, err := s.dec.Token()
	if err != nil {
		return nil, false
	}
	switch tok := tok.(type) {
	case json.Delim:
		switch tok {
		case '{':
			return s.object(t)
		case '[':
			return s.array(t)
		}
		return nil, false // a stray '}' or ']': the decoder reports it as an error anyway
	case json.Number:
		if s.dec.InputOffset() >= s.end {
			return nil, false
		}
		return []byte(tok), true
	default: // string, bool or nil: whole once read
		b, _ := json.Marshal(tok)
		return b, true
	}
}

func (s *salvager) object(t reflect.Type) ([]byte, bool) {
	buf := []byte{'{'}
	n := 0
	closeCut := func() ([]byte, bool) { return append(buf, '}'), false }
	for s.dec.More() {
		tok, err := s.dec.Token()
		if err != nil {
			return closeCut()
		}
		key, _ := tok.(string)
		ft := memberType(t, key)
		v, whole := s.value(ft)
		if v != nil && (whole || keepCut(ft, t)) {
			if n > 0 {
				buf = append(buf, ',')
			}
			kb, _ := json.Marshal(key)
			buf = append(append(append(buf, kb...), ':'), v...)
			n++
		}
		if !whole {
			return closeCut()
		}
	}
	if tok, err := s.dec.Token(); err != nil || tok != json.Delim('}') {
		return closeCut()
	}
	return append(buf, '}'), true
}

func (s *salvager) array(t reflect.Type) ([]byte, bool) {
	buf := []byte{'['}
	n := 0
	var et reflect.Type
	if t = deref(t); t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
		et = t.Elem()
	}
	closeCut := func() ([]byte, bool) { return append(buf, ']'), false }
	for s.dec.More() {
		v, whole := s.value(et)
		if v != nil && (whole || keepCut(et, t)) {
			if n > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, v...)
			n++
		}
		if !whole {
			return closeCut()
		}
	}
	if tok, err := s.dec.Token(); err != nil || tok != json.Delim(']') {
		return closeCut()
	}
	return append(buf, ']'), true
}

// keepCut decides whether a value of type t cut short inside a parent of
// type parent is kept with what it has: collections always (their entries
// stand alone), structs only as fields of a struct (the document's
// sections), never as the entry of a collection (a record).
func keepCut(t, parent reflect.Type) bool {
	t, parent = deref(t), deref(parent)
	if t == nil {
		return false
	}
	switch t.Kind() {
	case reflect.Map, reflect.Slice, reflect.Array:
		return true
	case reflect.Struct:
		return parent != nil && parent.Kind() == reflect.Struct
	}
	return false
}

// memberType is the type of key's value in an object of type t: a map's
// element, or the struct field encoding/json would fill (exact name first,
// then any case); nil when unknown.
func memberType(t reflect.Type, key string) reflect.Type {
	t = deref(t)
	if t == nil {
		return nil
	}
	switch t.Kind() {
	case reflect.Map:
		return t.Elem()
	case reflect.Struct:
		var fold reflect.Type
		for _, f := range reflect.VisibleFields(t) {
			if !f.IsExported() || f.Anonymous {
				continue
			}
			name := f.Name
			if tag, ok := f.Tag.Lookup("json"); ok {
				tn, _, _ := strings.Cut(tag, ",")
				if tn == "-" {
					continue
				}
				if tn != "" {
					name = tn
				}
			}
			if name == key {
				return f.Type
			}
			if fold == nil && strings.EqualFold(name, key) {
				fold = f.Type
			}
		}
		return fold
	}
	return nil
}

func deref(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}
