package defaults

import (
	"testing"
	"time"
)

func TestPositive(t *testing.T) {
	for _, tt := range []struct{ in, want time.Duration }{{0, time.Second}, {-1, time.Second}, {2, 2}} {
		got := tt.in
		Positive(&got, time.Second)
		if got != tt.want {
			t.Errorf("Positive(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
