package event

import (
	"errors"
	"fmt"
	"testing"
)

func TestLevelString(t *testing.T) {
	want := []string{"Verbose", "Debug", "Information", "Warning", "Error", "Fatal"}
	for i, w := range want {
		if got := Level(i).String(); got != w {
			t.Errorf("Level(%d).String() = %q, want %q", i, got, w)
		}
	}
	if got := Level(6).String(); got != "Level(6)" {
		t.Errorf("Level(6).String() = %q", got)
	}
	if got := Level(255).String(); got != "Level(255)" {
		t.Errorf("Level(255).String() = %q", got)
	}
	// Same numbers as mtlog's core.LogEventLevel.
	if LevelVerbose != 0 || LevelDebug != 1 || LevelInformation != 2 ||
		LevelWarning != 3 || LevelError != 4 || LevelFatal != 5 {
		t.Error("level numbers differ from mtlog")
	}
}

func TestParseLevel(t *testing.T) {
	cases := map[string]Level{
		"Verbose": LevelVerbose, "verbose": LevelVerbose, "VRB": LevelVerbose, "vrb": LevelVerbose,
		"Debug": LevelDebug, "DEBUG": LevelDebug, "DBG": LevelDebug,
		"Information": LevelInformation, "information": LevelInformation, "INF": LevelInformation, "info": LevelInformation,
		"Warning": LevelWarning, "WRN": LevelWarning, "wrn": LevelWarning, "warn": LevelWarning,
		"Error": LevelError, "ERR": LevelError, "error": LevelError,
		"Fatal": LevelFatal, "FTL": LevelFatal, "fAtAl": LevelFatal,
	}
	for s, want := range cases {
		got, err := ParseLevel(s)
		if err != nil || got != want {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "Level(6)", "critical", "6", "INFORMATIONAL"} {
		if _, err := ParseLevel(s); err == nil {
			t.Errorf("ParseLevel(%q) succeeded, want error", s)
		}
	}
	// Every name round-trips through String.
	for l := LevelVerbose; l <= LevelFatal; l++ {
		if got, err := ParseLevel(l.String()); err != nil || got != l {
			t.Errorf("ParseLevel(%q) = %v, %v", l.String(), got, err)
		}
	}
}

func TestErrorValueAndUnsupported(t *testing.T) {
	var err error = &ErrorValue{Message: "boom"}
	if err.Error() != "boom" {
		t.Errorf("Error() = %q", err.Error())
	}
	u := Unsupported{Type: "chan int", Reason: "cannot encode channels"}
	if got := u.String(); got != "<unsupported chan int: cannot encode channels>" {
		t.Errorf("String() = %q", got)
	}
	if got := fmt.Sprint(u); got != u.String() {
		t.Errorf("fmt.Sprint = %q", got)
	}
}

func TestErrorsMessages(t *testing.T) {
	if errors.Is(ErrMalformed, ErrUnknownVersion) {
		t.Fatal("sentinels must be distinct")
	}
	for _, e := range []error{ErrMalformed, ErrUnknownVersion} {
		if len(e.Error()) < 40 {
			t.Errorf("sentinel message %q should say what to do", e.Error())
		}
	}
}
