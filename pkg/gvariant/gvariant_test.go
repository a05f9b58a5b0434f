package gvariant

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseType(t *testing.T) {
	for _, tc := range []struct {
		s            string
		align, fixed int
	}{
		{"y", 1, 1}, {"b", 1, 1}, {"n", 2, 2}, {"u", 4, 4}, {"t", 8, 8}, {"d", 8, 8},
		{"s", 1, 0}, {"v", 8, 0}, {"ay", 1, 0}, {"at", 8, 0}, {"()", 1, 1},
		{"(uuu)", 4, 12}, {"(yt)", 8, 16}, {"(ty)", 8, 16}, {"{sv}", 8, 0}, {"(uuua(ayay))", 4, 0},
		{"(a{sv}aya(say)sstayay)", 8, 0}, {"ms", 1, 0}, {"mu", 4, 0},
	} {
		ty, err := ParseType(tc.s)
		if err != nil {
			t.Errorf("%s: %v", tc.s, err)
			continue
		}
		if ty.Alignment() != tc.align || ty.FixedSize() != tc.fixed || ty.String() != tc.s {
			t.Errorf("%s: align %d fixed %d, want %d %d", tc.s, ty.Alignment(), ty.FixedSize(), tc.align, tc.fixed)
		}
	}
	for _, bad := range []string{"", "a", "(", "(u", "{vs}", "{sss}", "z", "uu", "m", strings.Repeat("a", 100) + "y"} {
		if _, err := ParseType(bad); !errors.Is(err, ErrInvalidType) {
			t.Errorf("%q: err = %v, want ErrInvalidType", bad, err)
		}
	}
}

// Encodings checked by hand against the GVariant specification's examples and rules.
func TestMarshalVectors(t *testing.T) {
	for _, tc := range []struct {
		name string
		typ  string
		v    any
		hex  string
	}{
		{"string", "s", "hello world", "68656c6c6f20776f726c6400"},
		{"maybe string", "ms", Maybe{Valid: true, Value: "hello world"}, "68656c6c6f20776f726c640000"},
		{"nothing", "ms", Maybe{}, ""},
		{"bool array", "ab", []any{true, false, false, true, true}, "0100000101"},
		{"struct", "(si)", []any{"foo", int32(-1)}, "666f6f00ffffffff04"},
		{"string array", "as", []any{"i", "can", "has", "strings?"}, "690063616e0068617300737472696e67733f00 02060a13"},
		{"array of struct", "a(si)", []any{[]any{"hi", int32(-2)}, []any{"bye", int32(-1)}},
			"686900 00 feffffff 03 000000 62796500 ffffffff 04 09 15"},
		{"dict", "{si}", []any{"a key", int32(514)}, "61206b657900000002020000 06"},
		{"variant", "v", Variant{Type: MustParseType("s"), Value: "foo"}, "666f6f000073"},
		{"unit", "()", []any{}, "00"},
		{"padded fixed struct", "(ty)", []any{uint64(1), uint8(2)}, "0100000000000000 02 00000000000000"},
		{"empty variable array", "as", []any{}, ""},
		{"empty fixed array", "au", []any{}, ""},
		{"nested", "(a{sv}ay)", []any{[]any{[]any{"k", Variant{MustParseType("u"), uint32(7)}}}, []byte{1, 2}},
			"6b00 000000000000 07000000 0075 02 0f 0102 10"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ty := MustParseType(tc.typ)
			got, err := Marshal(ty, tc.v)
			if err != nil {
				t.Fatal(err)
			}
			want := unhex(t, tc.hex)
			if !bytes.Equal(got, want) {
				t.Fatalf("Marshal = %x\n           want %x", got, want)
			}
			back, err := Unmarshal(ty, got)
			if err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			if !reflect.DeepEqual(back, tc.v) && !(len(want) == 0 && tc.typ[0] == 'a') {
				t.Fatalf("round trip = %#v, want %#v", back, tc.v)
			}
		})
	}
}

func TestOffsetWidths(t *testing.T) {
	// An array of strings whose body crosses 255 bytes needs 2-byte offsets; crossing 65535, 4.
	for _, tc := range []struct {
		n, width int
	}{{1, 1}, {200, 2}, {40000, 4}} {
		elems := make([]any, tc.n)
		for i := range elems {
			elems[i] = "x"
		}
		ty := MustParseType("as")
		b, err := Marshal(ty, elems)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != tc.n*2+tc.n*tc.width {
			t.Errorf("n=%d: size %d, want width %d", tc.n, len(b), tc.width)
		}
		if _, err := Unmarshal(ty, b); err != nil {
			t.Errorf("n=%d: %v", tc.n, err)
		}
	}
}

func TestUnmarshalRejectsNonNormal(t *testing.T) {
	for _, tc := range []struct {
		name, typ, hex string
	}{
		{"trailing data after fixed", "u", "0100000000"},
		{"short fixed", "u", "010000"},
		{"bool 2", "b", "02"},
		{"string without NUL", "s", "6869"},
		{"string with inner NUL", "s", "680069 00"},
		{"string not UTF-8", "s", "ff00"},
		{"nonzero padding", "(yu)", "01 ff0000 02000000"},
		{"unit not zero", "()", "01"},
		{"offset beyond end", "as", "6100 09"},
		{"offset table misaligned", "as", "610062 00 02 04 05"},
		{"wide offsets", "as", "6100 0200"},
		{"gap in tuple", "(ss)", "6100 00 6200 02"},
		{"variant without type", "v", "01"},
		{"variant bad type", "v", "0100 7a"},
		{"fixed array wrong multiple", "au", "010000000200"},
		{"dict entry trailing", "{sy}", "6100 01 02 02"},
		{"maybe missing marker", "ms", "6100 01"},
		{"empty variable tuple", "(s)", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Unmarshal(MustParseType(tc.typ), unhex(t, tc.hex))
			if !errors.Is(err, ErrNotNormal) {
				t.Fatalf("err = %v, want ErrNotNormal", err)
			}
		})
	}
}

func TestDepthLimit(t *testing.T) {
	// A variant nested in a variant MaxDepth+1 times is refused, not a stack overflow.
	b := []byte{0x01}
	typ := "y"
	for i := 0; i <= MaxDepth+1; i++ {
		b = append(append(b, 0), typ...)
		typ = "v"
		// Pad the child to the 8-byte alignment the next variant would not need: variants start
		// at offset 0, so no padding is required.
	}
	if _, err := Unmarshal(MustParseType("v"), b); err == nil {
		t.Fatal("deeply nested variant accepted")
	}
}

func TestMarshalTypeMismatch(t *testing.T) {
	if _, err := Marshal(MustParseType("u"), "x"); err == nil {
		t.Fatal("string encoded as u")
	}
	if _, err := Marshal(MustParseType("(uu)"), []any{uint32(1)}); err == nil {
		t.Fatal("short tuple encoded")
	}
	if _, err := Marshal(MustParseType("s"), "a\x00b"); err == nil {
		t.Fatal("string with NUL encoded")
	}
}
