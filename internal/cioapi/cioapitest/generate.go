package cioapitest

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"
)

// DocExample is the document's own email delivery, with exactly the values
// the facts file lists (msg_template_id spelt as the examples spell it). The
// members it does not list (deduplicate_id, customer_identifiers, subject, …)
// are left out rather than invented.
func DocExample() map[string]any {
	return map[string]any{
		"id":              "ag1q6QWq6QUBAAF4_CGoeVX7mFkDbRFu7ek=",
		"msg_template_id": int64(43),
		"action_id":       int64(215),
		"campaign_id":     int64(23),
		"newsletter_id":   nil,
		"broadcast_id":    nil,
		"customer_id":     nil,
		"recipient":       "person@example.com",
		"metrics":         map[string]any{"delivered": int64(1619137768), "sent": int64(1619137768)},
		"created":         int64(1619137767),
		"type":            "email",
		"forgotten":       false,
	}
}

// typeWeights is how often each delivery type is generated, in percent.
var typeWeights = []struct {
	typ    string
	weight int
}{
	{"email", 70}, {"push", 8}, {"twilio", 7}, {"webhook", 4}, {"whatsapp", 4},
	{"slack", 3}, {"in_app", 3}, {"live_notification", 1},
}

var (
	firstNames = []string{"ana", "ben", "chloe", "dmitri", "eve", "farah", "gus", "hana", "ivan", "jo"}
	subjects   = []string{"Your March invoice", "Welcome aboard", "Did you get that thing I sent you?",
		"Your cart misses you", "3 tips for your first week", "Password reset", "We've updated our terms"}
	failures = []string{"550 5.1.1 mailbox unavailable", "Invalid device token", "Unreachable destination handset",
		"connection refused", "message rejected as spam", "recipient suppressed"}
)

// Generate makes n realistic deliveries, the same for the same seed, created
// uniformly in [from, to): mostly email, each with unique Customer.io-style
// ids, one parent, and the metrics of its channel in time order.
func Generate(n int, seed int64, from, to time.Time) []map[string]any {
	g := generator{r: rand.New(rand.NewPCG(uint64(seed), 0x5eed)), ids: map[string]bool{},
		from: from.Unix(), span: to.Unix() - from.Unix()}
	out := make([]map[string]any, 0, n)
	for range n {
		out = append(out, g.delivery())
	}
	return out
}

type generator struct {
	r          *rand.Rand
	ids        map[string]bool
	from, span int64
}

func (g *generator) delivery() map[string]any {
	typ := g.pickType()
	created := g.from
	if g.span > 0 {
		created += g.r.Int64N(g.span)
	}
	id := g.id()
	customerID := g.customerID()
	metrics, failed := g.metrics(typ, created)
	d := map[string]any{
		"id": id, "deduplicate_id": id + ":" + strconv.FormatInt(created, 10), "type": typ, "created": created,
		"customer_id": customerID, "customer_identifiers": g.identifiers(customerID),
		"recipient": g.recipient(typ, customerID), "subject": nil, "metrics": metrics, "failure_message": nil,
		"campaign_id": nil, "newsletter_id": nil, "broadcast_id": nil,
		"action_id": g.maybeInt(60, 100, 400), "parent_action_id": g.maybeInt(20, 100, 400),
		"content_id": g.maybeInt(30, 1, 50), "trigger_event_id": nil,
		"forgotten": g.r.IntN(100) == 0,
	}
	if typ == "email" {
		d["subject"] = subjects[g.r.IntN(len(subjects))]
	}
	if failed {
		d["failure_message"] = failures[g.r.IntN(len(failures))]
	}
	switch p := g.r.IntN(10); {
	case p < 6:
		d["campaign_id"] = int64(1 + g.r.IntN(40))
	case p < 9:
		d["newsletter_id"] = int64(1 + g.r.IntN(20))
	default:
		d["broadcast_id"] = int64(1 + g.r.IntN(5))
	}
	if g.r.IntN(10) < 3 {
		d["trigger_event_id"] = g.ulid()
	}
	if g.r.IntN(2) == 0 {
		d["msg_template_id"] = int64(1 + g.r.IntN(100))
	}
	return d
}

func (g *generator) pickType() string {
	p := g.r.IntN(100)
	for _, t := range typeWeights {
		if p < t.weight {
			return t.typ
		}
		p -= t.weight
	}
	return "email"
}

// id is a unique id shaped like the document's: base64url of 26 bytes whose
// first three spell "ag1q".
func (g *generator) id() string {
	for {
		b := make([]byte, 26)
		copy(b, []byte{0x6a, 0x0d, 0x6a})
		for i := 3; i < len(b); i++ {
			b[i] = byte(g.r.UintN(256))
		}
		if id := base64.URLEncoding.EncodeToString(b); !g.ids[id] {
			g.ids[id] = true
			return id
		}
	}
}

func (g *generator) customerID() any {
	switch p := g.r.IntN(10); {
	case p == 0:
		return nil
	case p < 6:
		return strconv.Itoa(1 + g.r.IntN(50000))
	default:
		return fmt.Sprintf("user_%06d", g.r.IntN(1000000))
	}
}

// identifiers is customer_identifiers: id as customer_id, an email most of
// the time, and always a cio_id.
func (g *generator) identifiers(customerID any) map[string]any {
	ids := map[string]any{"id": customerID, "email": nil, "cio_id": fmt.Sprintf("%012x", g.r.Uint64N(1<<48))}
	if g.r.IntN(10) < 8 {
		ids["email"] = g.email()
	}
	return ids
}

func (g *generator) email() string {
	return fmt.Sprintf("%s.%d@example.com", firstNames[g.r.IntN(len(firstNames))], g.r.IntN(10000))
}

// recipient is the channel's address: an email, a phone, a device token, a
// Slack channel, a URL, or the person's id for in-app channels.
func (g *generator) recipient(typ string, customerID any) string {
	switch typ {
	case "email":
		return g.email()
	case "twilio", "whatsapp":
		return fmt.Sprintf("+1555%07d", g.r.IntN(10000000))
	case "push":
		return fmt.Sprintf("%016x%016x%016x%016x", g.r.Uint64(), g.r.Uint64(), g.r.Uint64(), g.r.Uint64())
	case "slack":
		return fmt.Sprintf("C0%08X", g.r.Uint32())
	case "webhook":
		return fmt.Sprintf("https://hooks.example.com/cio/%d", g.r.IntN(100))
	}
	if id, ok := customerID.(string); ok {
		return id
	}
	return fmt.Sprintf("%012x", g.r.Uint64N(1<<48))
}

func (g *generator) maybeInt(percent, lo, hi int) any {
	if g.r.IntN(100) >= percent {
		return nil
	}
	return int64(lo + g.r.IntN(hi-lo+1))
}

// ulid is a trigger event id: 26 Crockford base32 characters.
func (g *generator) ulid() string {
	const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	b := make([]byte, 26)
	for i := range b {
		b[i] = alphabet[g.r.IntN(len(alphabet))]
	}
	return string(b)
}

// timeline hands out metric times after a delivery's creation, in order.
type timeline struct {
	r *rand.Rand
	t int64
}

// next is a time up to within seconds after the previous one.
func (tl *timeline) next(within int64) int64 {
	tl.t += 1 + tl.r.Int64N(within)
	return tl.t
}

// metrics is a plausible history of a delivery of typ created at created,
// and whether it failed (so carries a failure_message).
func (g *generator) metrics(typ string, created int64) (m map[string]any, failed bool) {
	tl := &timeline{r: g.r, t: created}
	m = map[string]any{}
	if g.r.IntN(100) < 3 {
		m["drafted"] = tl.next(60)
		return m, false
	}
	if g.r.IntN(10) < 3 {
		m["created"] = created
	}
	if g.r.IntN(100) < 6 {
		stop := "failed"
		if (typ == "email" || typ == "push") && g.r.IntN(2) == 0 {
			stop = "dropped"
		}
		m[stop] = tl.next(30)
		return m, true
	}
	m["sent"] = tl.next(30)
	return m, g.afterSent(typ, m, tl)
}

// afterSent adds what a sent delivery of typ went through to m.
func (g *generator) afterSent(typ string, m map[string]any, tl *timeline) (failed bool) {
	chance := func(percent int) bool { return g.r.IntN(100) < percent }
	at := func(name string, within int64) int64 { t := tl.next(within); m[name] = t; return t }
	switch typ {
	case "email", "push", "twilio", "whatsapp":
		switch p := g.r.IntN(100); {
		case p < 8 && typ != "whatsapp":
			at("bounced", 120)
			return true
		case p < 11:
			at("undeliverable", 120)
			return true
		case p < 95:
			at("delivered", 60)
		default:
			return false // still on its way
		}
	case "slack", "webhook":
		if chance(4) {
			at("failed", 30)
			return true
		}
	}
	opens := map[string]int{"email": 40, "push": 20, "whatsapp": 60, "in_app": 50, "live_notification": 40}[typ]
	if chance(opens) {
		t := at("opened", 86400)
		if typ == "email" {
			g.variants(m, "opened", t)
		}
	}
	_, opened := m["opened"]
	if (opened || typ == "twilio" || typ == "slack" || typ == "webhook") && typ != "live_notification" && chance(25) {
		t := at("clicked", 3600)
		if typ == "email" {
			g.variants(m, "clicked", t)
		}
		if chance(25) {
			at("converted", 86400)
		}
	}
	if _, opened := m["opened"]; opened && typ == "email" && chance(3) {
		at("unsubscribed", 3600)
	}
	if _, delivered := m["delivered"]; delivered && typ == "email" && chance(1) {
		at("spammed", 86400)
	}
	return false
}

// variants adds the human_ or prefetch_ variant of an open or click, at its
// time, as Customer.io records them for email most of the time.
func (g *generator) variants(m map[string]any, metric string, t int64) {
	switch p := g.r.IntN(10); {
	case p < 7:
		m["human_"+metric] = t
	case p < 9:
		m["prefetch_"+metric] = t
	}
}
