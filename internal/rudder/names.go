package rudder

import "strings"

// UnknownEvent is the name of every event whose (object_type, metric) pair is not in
// the transformer's table, including a missing or non-string object_type or metric.
const UnknownEvent = "Unknown Event"

// eventNames is rudder-transformer's src/sources/customerio/config.js: object_type
// (lower-cased) → metric (exact) → event name.
var eventNames = map[string]map[string]string{
	"customer": {
		"subscribed":   "Customer Subscribed",
		"unsubscribed": "Customer Unsubscribed",
	},
	"email": {
		"drafted":      "Email Drafted",
		"attempted":    "Email Attempted",
		"sent":         "Email Sent",
		"delivered":    "Email Delivered",
		"opened":       "Email Opened",
		"clicked":      "Email Link Clicked",
		"converted":    "Email Converted",
		"unsubscribed": "Email Unsubscribed",
		"subscribed":   "Email Subscribed",
		"bounced":      "Email Bounced",
		"dropped":      "Email Dropped",
		"spammed":      "Email Marked as Spam",
		"failed":       "Email Failed",
		"deferred":     "Email Deferred",
	},
	"push": {
		"drafted":   "Push Drafted",
		"attempted": "Push Attempted",
		"sent":      "Push Sent",
		"delivered": "Push Delivered",
		"opened":    "Push Opened",
		"clicked":   "Push Link Clicked",
		"converted": "Push Converted",
		"bounced":   "Push Bounced",
		"dropped":   "Push Dropped",
		"failed":    "Push Failed",
	},
	"sms": {
		"drafted":   "SMS Drafted",
		"attempted": "SMS Attempted",
		"sent":      "SMS Sent",
		"delivered": "SMS Delivered",
		"clicked":   "SMS Link Clicked",
		"converted": "SMS Converted",
		"bounced":   "SMS Bounced",
		"failed":    "SMS Failed",
	},
	"slack": {
		"drafted":   "Slack Message Drafted",
		"attempted": "Slack Message Attempted",
		"sent":      "Slack Message Sent",
		"clicked":   "Slack Message Link Clicked",
		"failed":    "Slack Message Failed",
	},
	"webhook": {
		"drafted":   "Webhook Message Drafted",
		"attempted": "Webhook Message Attempted",
		"sent":      "Webhook Message Sent",
		"clicked":   "Webhook Message Link Clicked",
		"failed":    "Webhook Message Failed",
	},
}

// eventName looks the pair up in eventNames. Both must be strings: a non-string
// object_type, on which the transformer fails, gives UnknownEvent (err03), and so does
// a non-string metric, which JavaScript would stringify into the lookup path. The
// lookup is a plain one: "constructor" or "opened.length" is not a JavaScript
// prototype member or path here (qk03).
func eventName(objectType, metric any) string {
	ot, ok1 := objectType.(string)
	m, ok2 := metric.(string)
	if !ok1 || !ok2 {
		return UnknownEvent
	}
	if name, ok := eventNames[jsLower(ot)][m]; ok {
		return name
	}
	return UnknownEvent
}

// jsLower lower-cases s for the lookup as JavaScript's toLowerCase does. The one
// difference from strings.ToLower that can reach an ASCII table key is U+0130 (İ):
// JavaScript maps it to "i" plus a combining dot, which matches no key, where Go maps
// it to a plain "i"; so a string holding it is made to match nothing.
func jsLower(s string) string {
	if strings.ContainsRune(s, '\u0130') {
		return "\u0130"
	}
	return strings.ToLower(s)
}
