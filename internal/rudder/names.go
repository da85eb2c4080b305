package rudder

import (
	"slices"
	"strings"
)

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

// specMetrics lists, per object_type, the metrics of Customer.io's reporting-webhooks
// spec (reference/customerio-reporting-webhooks-openapi.json). A pair listed here that
// eventNames lacks is named by upstream's own pattern (SPEC 6): channel label + metric
// label, such as "In-App Message Link Clicked" or "WhatsApp Sent".
var specMetrics = map[string][]string{
	"customer": {},
	"email": {"drafted", "attempted", "sent", "delivered", "opened", "clicked", "converted",
		"bounced", "dropped", "spammed", "failed", "undeliverable"}, // + subscriptionMetrics
	"push": {"drafted", "attempted", "sent", "delivered", "opened", "clicked", "converted",
		"bounced", "dropped", "failed", "undeliverable"},
	"sms": {"drafted", "attempted", "sent", "delivered", "clicked", "converted", "bounced",
		"failed", "undeliverable", "replied"},
	"whatsapp": {"drafted", "attempted", "sent", "delivered", "opened", "clicked", "converted",
		"bounced", "dropped", "failed", "undeliverable", "replied"},
	"slack":   {"drafted", "attempted", "sent", "clicked", "failed", "undeliverable"},
	"webhook": {"drafted", "attempted", "sent", "clicked", "failed", "undeliverable"},
	"in_app": {"drafted", "attempted", "sent", "opened", "clicked", "converted", "failed",
		"undeliverable"},
}

// channelLabels and metricLabels are upstream's naming pattern (config.js): "Email" +
// "Link Clicked". A metric without a label is capitalised.
var (
	channelLabels = map[string]string{
		"customer": "Customer", "email": "Email", "push": "Push", "sms": "SMS",
		"whatsapp": "WhatsApp", "slack": "Slack Message", "webhook": "Webhook Message",
		"in_app": "In-App Message",
	}
	metricLabels = map[string]string{
		"clicked": "Link Clicked", "spammed": "Marked as Spam",
		"cio_subscription_preferences_changed": "Subscription Preferences Changed",
	}
)

// subscriptionMetrics are the customer metrics. The spec's customer events carry the
// object_type of the channel that triggered the change ("customer" when none did), so
// each of them is a pair of the spec with every object type.
var subscriptionMetrics = []string{"subscribed", "unsubscribed", "cio_subscription_preferences_changed"}

// specNames is every pair of the spec that eventNames lacks, with its pattern name.
var specNames = patternNames()

func patternNames() map[string]map[string]string {
	names := make(map[string]map[string]string, len(specMetrics))
	for objectType, metrics := range specMetrics {
		names[objectType] = map[string]string{}
		for _, m := range append(metrics, subscriptionMetrics...) {
			if _, upstream := eventNames[objectType][m]; !upstream {
				names[objectType][m] = channelLabels[objectType] + " " + metricLabel(m)
			}
		}
	}
	return names
}

func metricLabel(metric string) string {
	if l, ok := metricLabels[metric]; ok {
		return l
	}
	return strings.ToUpper(metric[:1]) + metric[1:]
}

// EventName names an (object_type, metric) pair as Transform names the event
// that carries it (see eventName); "" for either gives UnknownEvent.
func EventName(objectType, metric string) string { return eventName(objectType, metric) }

// eventName names the pair: upstream's name when eventNames has one, else the
// pattern name of a pair in Customer.io's spec, else UnknownEvent. Both must be
// strings: a non-string object_type, on which the transformer fails, gives
// UnknownEvent (err03), and so does a non-string metric, which JavaScript would
// stringify into the lookup path. The lookup is a plain one: "constructor" or
// "opened.length" is not a JavaScript prototype member or path here (qk03).
func eventName(objectType, metric any) string {
	ot, ok1 := objectType.(string)
	m, ok2 := metric.(string)
	if !ok1 || !ok2 {
		return UnknownEvent
	}
	ot = jsLower(ot)
	if name, ok := eventNames[ot][m]; ok {
		return name
	}
	if name, ok := specNames[ot][m]; ok {
		return name
	}
	return UnknownEvent
}

// legacyPair splits a legacy body's event_type ("email_delivered", "in_app_opened")
// into object_type and metric, as the analyst views split it: the object type is
// "in_app" or the text before the first "_", the metric the rest. ok is false when
// eventType is not a string of that shape.
func legacyPair(eventType any) (objectType, metric string, ok bool) {
	s, isString := eventType.(string)
	if !isString {
		return "", "", false
	}
	if rest, found := strings.CutPrefix(s, "in_app_"); found && rest != "" {
		return "in_app", rest, true
	}
	objectType, metric, ok = strings.Cut(s, "_")
	return objectType, metric, ok && objectType != "" && metric != ""
}

// pair is the object's (object_type, metric), each taken from the legacy event_type
// when the object lacks it (SPEC 6: legacy bodies are split as the views split them).
func pair(obj map[string]any) (objectType, metric any) {
	objectType, metric = obj["object_type"], obj["metric"]
	if objectType != nil && metric != nil {
		return objectType, metric
	}
	if ot, m, ok := legacyPair(obj["event_type"]); ok {
		if objectType == nil {
			objectType = ot
		}
		if metric == nil {
			metric = m
		}
	}
	return objectType, metric
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

// SpecPair reports whether (objectType, metric) is a pair of Customer.io's
// reporting-webhooks spec: a delivery metric of that channel, or a subscription
// metric (which the spec sends with every object type).
func SpecPair(objectType, metric string) bool {
	if _, ok := specMetrics[objectType]; !ok {
		return false
	}
	return slices.Contains(specMetrics[objectType], metric) || slices.Contains(subscriptionMetrics, metric)
}

// LegacyPair splits a legacy body's event_type as the views split it (see legacyPair).
func LegacyPair(eventType any) (objectType, metric string, ok bool) { return legacyPair(eventType) }
