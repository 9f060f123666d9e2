package main

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"
)

// recordFormatter appends one record, formatted, to dst.
type recordFormatter func(dst []byte, r *kgo.Record) []byte

// compileRecordFormat compiles a kcat-style format string (kcat -f):
//
//	%t topic       %p partition      %o offset      %T timestamp (ms since epoch)
//	%k key         %K key length     %s value       %S value length
//	%h headers as name=value,name=value             %% a percent sign
//	\n newline     \r carriage return \t tab        \\ a backslash
//
// Lengths of a null key or value are -1; a null key or value prints
// nothing. Any other % or \ sequence is a usage error.
func compileRecordFormat(format string) (recordFormatter, error) {
	var parts []recordFormatter
	var literal []byte
	flush := func() {
		if len(literal) > 0 {
			lit := literal
			parts = append(parts, func(dst []byte, _ *kgo.Record) []byte { return append(dst, lit...) })
			literal = nil
		}
	}
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' && c != '\\' {
			literal = append(literal, c)
			continue
		}
		if i+1 == len(format) {
			return nil, usageErrorf("--format %q ends in a lone %c", format, c)
		}
		i++
		next := format[i]
		if c == '\\' {
			switch next {
			case 'n':
				literal = append(literal, '\n')
			case 'r':
				literal = append(literal, '\r')
			case 't':
				literal = append(literal, '\t')
			case '\\':
				literal = append(literal, '\\')
			default:
				return nil, usageErrorf("--format %q: unknown escape \\%c (known: \\n \\r \\t \\\\)", format, next)
			}
			continue
		}
		if next == '%' {
			literal = append(literal, '%')
			continue
		}
		var part recordFormatter
		switch next {
		case 't':
			part = func(dst []byte, r *kgo.Record) []byte { return append(dst, r.Topic...) }
		case 'p':
			part = func(dst []byte, r *kgo.Record) []byte { return strconv.AppendInt(dst, int64(r.Partition), 10) }
		case 'o':
			part = func(dst []byte, r *kgo.Record) []byte { return strconv.AppendInt(dst, r.Offset, 10) }
		case 'T':
			part = func(dst []byte, r *kgo.Record) []byte { return strconv.AppendInt(dst, r.Timestamp.UnixMilli(), 10) }
		case 'k':
			part = func(dst []byte, r *kgo.Record) []byte { return append(dst, r.Key...) }
		case 'K':
			part = func(dst []byte, r *kgo.Record) []byte { return appendLength(dst, r.Key) }
		case 's':
			part = func(dst []byte, r *kgo.Record) []byte { return append(dst, r.Value...) }
		case 'S':
			part = func(dst []byte, r *kgo.Record) []byte { return appendLength(dst, r.Value) }
		case 'h':
			part = func(dst []byte, r *kgo.Record) []byte {
				for i, h := range r.Headers {
					if i > 0 {
						dst = append(dst, ',')
					}
					dst = append(dst, h.Key...)
					dst = append(dst, '=')
					dst = append(dst, h.Value...)
				}
				return dst
			}
		default:
			return nil, usageErrorf("--format %q: unknown %%%c (known: %%t %%p %%o %%T %%k %%K %%s %%S %%h %%%%)", format, next)
		}
		flush()
		parts = append(parts, part)
	}
	flush()
	return func(dst []byte, r *kgo.Record) []byte {
		for _, p := range parts {
			dst = p(dst, r)
		}
		return dst
	}, nil
}

func appendLength(dst, b []byte) []byte {
	if b == nil {
		return append(dst, "-1"...)
	}
	return strconv.AppendInt(dst, int64(len(b)), 10)
}

// jsonRecord is a consumed record in `consume --format json`, one object
// per line. Key and value are strings, or null; bytes that are not UTF-8
// are base64 (standard encoding) with KeyBase64 or ValueBase64 set.
type jsonRecord struct {
	Topic       string       `json:"topic"`
	Partition   int32        `json:"partition"`
	Offset      int64        `json:"offset"`
	Timestamp   int64        `json:"timestamp"`
	Key         *string      `json:"key"`
	KeyBase64   bool         `json:"key_base64,omitempty"`
	Value       *string      `json:"value"`
	ValueBase64 bool         `json:"value_base64,omitempty"`
	Headers     []jsonHeader `json:"headers"`
}

// jsonHeader is one record header of jsonRecord.
type jsonHeader struct {
	Key         string  `json:"key"`
	Value       *string `json:"value"`
	ValueBase64 bool    `json:"value_base64,omitempty"`
}

// jsonBytes returns b as a string (nil for nil), base64 when not UTF-8.
func jsonBytes(b []byte) (*string, bool) {
	if b == nil {
		return nil, false
	}
	if utf8.Valid(b) {
		s := string(b)
		return &s, false
	}
	s := base64.StdEncoding.EncodeToString(b)
	return &s, true
}

// appendJSONRecord appends r as one line of JSON.
func appendJSONRecord(dst []byte, r *kgo.Record) []byte {
	jr := jsonRecord{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp.UnixMilli(), Headers: []jsonHeader{}}
	jr.Key, jr.KeyBase64 = jsonBytes(r.Key)
	jr.Value, jr.ValueBase64 = jsonBytes(r.Value)
	for _, h := range r.Headers {
		jh := jsonHeader{Key: h.Key}
		jh.Value, jh.ValueBase64 = jsonBytes(h.Value)
		jr.Headers = append(jr.Headers, jh)
	}
	b, _ := json.Marshal(jr) // strings, numbers and bools always marshal
	dst = append(dst, b...)
	return append(dst, '\n')
}
