package warehouse

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTableName(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ event, table, value string }{
		{"Email Opened", "email_opened", "email_opened"},
		{"Email Link Clicked", "email_link_clicked", "email_link_clicked"},
		{"In-App Message Link Clicked", "in_app_message_link_clicked", "in_app_message_link_clicked"},
		{"Unknown Event", "unknown_event", "unknown_event"},
		{"Slack Message Drafted", "slack_message_drafted", "slack_message_drafted"},
		{"WhatsApp Sent", "whats_app_sent", "whats_app_sent"},
		{"SMS Replied", "sms_replied", "sms_replied"},
		{"Tracks", "_tracks", "tracks"}, // RudderStack's own table
		{"identifies", "_identifies", "identifies"},
		{"user", "_user", "user"}, // reserved word
		{"Order", "_order", "order"},
		{"2 Step", "_2_step", "_2_step"}, // leading digit
		{"", "", ""},
		{"!!!", "", ""},
		{"__private Thing", "__private_thing", "__private_thing"},
		{strings.Repeat("ab ", 40), strings.Repeat("ab_", 21), strings.TrimSuffix(strings.Repeat("ab_", 40), "_")},
	} {
		require.Equal(t, c.table, TableName(c.event), "table of %q", c.event)
		require.Equal(t, c.value, EventValue(c.event), "event value of %q", c.event)
	}
}

func TestColumnName(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"deliveryId":                  "delivery_id",
		"emailSubject":                "email_subject",
		"context_traits_cioId":        "context_traits_cio_id",
		"context_traits_email":        "context_traits_email",
		"link_url":                    "link_url",
		"recipients_failure_message":  "recipients_failure_message",
		"XMLHttpRequest":              "xml_http_request",
		"link2Url":                    "link2_url",
		"abc123def":                   "abc123_def",
		"ABC123":                      "abc123",
		"123abc":                      "_123abc",
		"123ABC":                      "_123abc",
		"a1B2":                        "a1_b2",
		"HTTPServer":                  "http_server",
		"fooBAR":                      "foo_bar",
		"fooBARBaz":                   "foo_bar_baz",
		"already_snake_case":          "already_snake_case",
		"with space-and.dots":         "with_space_and_dots",
		"_leading":                    "_leading",
		"__twoLeading":                "__two_leading",
		"user":                        "_user",
		"from":                        "_from",
		"Select":                      "_select",
		"1":                           "_1",
		"héllo wörld":                 "h_llo_w_rld",
		"":                            "",
		"$$$":                         "",
		"a" + strings.Repeat("b", 70): "a" + strings.Repeat("b", 62),
	} {
		require.Equal(t, want, ColumnName(in), "column of %q", in)
	}
}

// FuzzColumnName: any key gives a lower-case identifier of letters, digits and
// "_", at most 63 bytes plus the "_" that escapes a reserved word, never a bare
// reserved word, and the same answer every time.
func FuzzColumnName(f *testing.F) {
	for _, s := range []string{"deliveryId", "context_traits_cioId", "XMLHttp2Request", "_", "1st", "ÄÖÜ", "user", "a b c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, name := range []string{ColumnName(s), TableName(s)} {
			require.LessOrEqual(t, len(name), maxIdentifier+1)
			for i := 0; i < len(name); i++ {
				c := name[i]
				require.True(t, isLower(c) || isDigit(c) || c == '_', "%q → %q", s, name)
			}
			require.False(t, reservedWords[strings.ToUpper(name)], "%q → reserved %q", s, name)
			if name != "" {
				require.False(t, isDigit(name[0]), "%q → %q starts with a digit", s, name)
			}
		}
		require.Equal(t, ColumnName(s), ColumnName(s))
	})
}
