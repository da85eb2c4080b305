package domain

import "time"

// MaxRetentionDays bounds an integration's retention window: a hundred years
// is "keep everything" in all but name, and keeps the window's start a real
// instant. Clear the window (nil) to keep everything.
const MaxRetentionDays = 36500

// CheckRetentionDays validates a retention window: nil (keep everything) or a
// whole number of days from 1 to MaxRetentionDays.
func CheckRetentionDays(days *int) error {
	if days != nil && (*days < 1 || *days > MaxRetentionDays) {
		return Errorf(ErrInvalid, "retention_days must be a whole number of days from 1 to %d, or null to keep everything (got %d)", MaxRetentionDays, *days)
	}
	return nil
}

// RetentionCutoff is the start of a window of days ending at now: an event
// whose own time is before it is older than the window.
func RetentionCutoff(now time.Time, days int) time.Time {
	return now.Add(-time.Duration(days) * 24 * time.Hour)
}
