package gvariant

import (
	"bytes"
	"testing"
)

// The types OSTree reads from untrusted input.
var fuzzTypes = []string{
	"(a{sv}aya(say)sstayay)", "(a(say)a(sayay))", "(uuua(ayay))", "(uuuusa(ayay))",
	"(tuuuusa(ayay))", "a(ayay)", "a{sv}", "v", "aay", "(a(s(taya{sv}))a{sv})", "ms", "mu", "(ty)",
}

func FuzzUnmarshal(f *testing.F) {
	for i, ts := range fuzzTypes {
		ty := MustParseType(ts)
		seed, _ := Marshal(MustParseType("v"), Variant{Type: MustParseType("s"), Value: "seed"})
		f.Add(uint8(i), seed)
		_ = ty
	}
	f.Add(uint8(0), []byte("version\x001.0\x00\x00s\x08\x0f\x00\x00"))
	f.Add(uint8(1), []byte("hello\x00"+string(make([]byte, 32))+"\x06\x27\x28"))
	f.Add(uint8(2), []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x41, 0xed})
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		ty := MustParseType(fuzzTypes[int(which)%len(fuzzTypes)])
		v, err := Unmarshal(ty, data)
		if err != nil {
			return
		}
		// Whatever decodes must be the normal form of the decoded value.
		again, err := Marshal(ty, v)
		if err != nil {
			t.Fatalf("decoded value does not encode: %v", err)
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("accepted non-normal data %x (normal %x)", data, again)
		}
	})
}

func FuzzParseType(f *testing.F) {
	for _, ts := range fuzzTypes {
		f.Add(ts)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ty, err := ParseType(s)
		if err != nil {
			return
		}
		if ty.String() != s {
			t.Fatalf("ParseType(%q).String() = %q", s, ty.String())
		}
	})
}
