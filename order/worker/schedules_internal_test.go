package worker

import "testing"

// serverSchedules decides between failing (a 2.12+ server dropped
// allow_msg_schedules: misconfigured cluster) and the fallback (an old
// server cannot schedule).
func TestServerSchedules(t *testing.T) {
	for v, want := range map[string]bool{
		"2.15.2": true, "2.12.0": true, "2.12.0-RC.1": true, "3.0.0": true,
		"2.11.9": false, "2.10.22": false, "1.4.1": false, "": false, "garbage": false,
	} {
		if got := serverSchedules(v); got != want {
			t.Errorf("serverSchedules(%q) = %v, want %v", v, got, want)
		}
	}
}
