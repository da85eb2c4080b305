package httpapi_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/apptest"
	"github.com/cioloader/cioloader/internal/domain"
)

// browserBudget bounds the whole browser session: start, every wait, and the
// screenshot taken when a step fails. The steps themselves get a little less,
// so a step that times out still leaves time for that screenshot.
const (
	browserBudget = 30 * time.Second
	stepsBudget   = 25 * time.Second
)

// Ensure a person can do the whole admin job in a real browser: sign in (and
// be told when the token is wrong), create an integration (and see the API's
// message for a duplicate), generate a URL and copy it from the one-time box,
// see the event it receives counted and charted, revoke it (after which
// Customer.io gets 404), hit the two-active-URLs limit, set and clear the
// signing key, delete the integration, see API text shown as text, and sign
// out; the focus follows the next step, and nothing overflows from 360 px to
// wide screens.
func TestAdminPageBrowser(t *testing.T) {
	skipShort(t)
	t.Parallel()
	chromium := findChromium(t)
	app := apptest.Start(t)

	b := startBrowser(t, chromium)
	ctx := b.steps

	// Sign in with a wrong token: "wrong token", still on the sign-in form,
	// nothing kept.
	b.do(t, "open the page",
		chromedp.Navigate(app.URL+"/admin/"),
		chromedp.WaitVisible(testID("token-input")),
	)
	b.do(t, "sign in with a wrong token",
		chromedp.SendKeys(testID("token-input"), "not-the-token"),
		chromedp.Click(testID("signin-submit")),
		chromedp.WaitVisible(testID("signin-error")),
	)
	msg := b.text(t, "signin-error")
	require.Contains(t, strings.ToLower(msg), "wrong token")
	b.waitJS(t, "app hidden after a wrong token",
		`document.querySelector('[data-testid="app-view"]').hidden && !document.querySelector('[data-testid="signin-view"]').hidden`)
	require.Empty(t, b.eval(t, `sessionStorage.getItem("cioloader.adminToken") || ""`), "a refused token is not kept")
	b.screenshot(t, "admin-signin.png")

	// Sign in with the right token.
	b.do(t, "sign in",
		chromedp.SendKeys(testID("token-input"), app.AdminToken),
		chromedp.Click(testID("signin-submit")),
		chromedp.WaitVisible(testID("app-view")),
		chromedp.WaitVisible(testID("integrations-empty")),
		chromedp.WaitNotVisible(testID("signin-view")),
	)
	require.Equal(t, app.AdminToken, b.eval(t, `sessionStorage.getItem("cioloader.adminToken") || ""`))
	b.waitFocus(t, "create-name") // no integration yet: the next step is to create one

	// The favicon is the page's own SVG, and loads as an image.
	require.Equal(t, "/admin/favicon.svg", b.eval(t, `new URL(document.querySelector('link[rel="icon"]').href).pathname`))
	require.Equal(t, "32x32", b.evalAsync(t, `new Promise((ok, fail) => { const i = new Image(); `+
		`i.onload = () => ok(i.naturalWidth + "x" + i.naturalHeight); i.onerror = () => fail(new Error("favicon failed")); `+
		`i.src = document.querySelector('link[rel="icon"]').href; })`), "the favicon decodes as an image")

	// Create "Browser Test" and open it.
	row := `[data-testid="integration-row"][data-schema="browser_test"]`
	b.do(t, "create integration",
		chromedp.SendKeys(testID("create-name"), "Browser Test"),
		chromedp.Click(testID("create-submit")),
		chromedp.WaitVisible(chromedp.CSS(row)),
	)
	require.Equal(t, "active", b.textOf(t, row+` [data-testid="integration-status"]`))
	b.waitFocus(t, "generate-url") // a new integration's next step: a URL for Customer.io
	require.Equal(t, "0 events in 24 h", b.textOf(t, row+` [data-testid="integration-events"]`))
	require.Equal(t, "nothing received yet", b.textOf(t, row+` [data-testid="integration-last-received"]`))
	b.do(t, "open integration", chromedp.Click(chromedp.CSS(row+` [data-testid="open-integration"]`)))
	b.waitText(t, "detail-name", "Browser Test")
	require.Equal(t, "browser_test", b.text(t, "detail-schema"))
	require.Equal(t, "active", b.text(t, "detail-status"))
	b.waitText(t, "stat-events", "0")
	require.Equal(t, "never", b.text(t, "stat-last-received"))
	require.Equal(t, "no key (requests are not signature-checked)", b.text(t, "signing-key-state"))
	// On a wide screen the detail is in sight beside the list: the focus
	// stays on the row just chosen.
	require.Equal(t, "open-integration", b.eval(t, `document.activeElement.dataset.testid || ""`))
	// Nothing received yet: a sentence says so in place of an empty chart,
	// and empty tables show their message without a header row.
	b.waitJS(t, "activity empty state", `!document.querySelector('[data-testid="activity-empty"]').hidden && `+
		`document.querySelector('[data-testid="activity-body"]').hidden`)
	b.waitJS(t, "empty tables hidden", `['urls', 'rejections', 'erasures', 'imports'].every(x => `+
		`!document.querySelector('[data-testid="' + x + '-empty"]').hidden && `+
		`document.querySelector('[data-testid="' + x + '-table"]').closest(".table-wrap").hidden)`)
	// Every card of the detail has a heading of the same level.
	require.Equal(t, "", b.eval(t, `Array.from(document.querySelectorAll("#detail > section.card"))`+
		`.filter(c => !c.querySelector("h2")).map(c => c.textContent.trim().slice(0, 30)).join(" | ")`), "cards without an h2")
	require.Regexp(t, `(UTC|GMT|[A-Z]{3,4})\S*$`, b.text(t, "detail-loaded-at"), "the time of the counts shows its zone")

	// The same name again: the API's 409 message is shown.
	b.do(t, "create a duplicate",
		chromedp.SendKeys(testID("create-name"), "Browser Test"),
		chromedp.Click(testID("create-submit")),
		chromedp.WaitVisible(testID("create-error")),
	)
	require.Contains(t, b.text(t, "create-error"), "already exists")

	// Generate a URL: shown once, in the highlighted box, with a warning.
	b.do(t, "generate a URL",
		chromedp.Click(testID("generate-url")),
		chromedp.WaitVisible(testID("new-url-box")),
	)
	b.waitFocus(t, "copy-url") // the next step: copy it
	hookURL, err := chromedp.Run(ctx, chromedp.Value(testID("new-url-value")))
	require.NoError(t, err, "read the new URL")
	require.True(t, strings.HasPrefix(hookURL, app.URL+"/v1/webhooks/whk_"), hookURL)
	require.Contains(t, b.text(t, "new-url-warning"), "will not be shown again")
	b.waitJS(t, "URL listed as active", `document.querySelectorAll('[data-testid="url-row"][data-active="true"]').length === 1`)
	prefix := b.textOf(t, `[data-testid="url-row"] [data-testid="url-prefix"]`)
	require.True(t, strings.HasPrefix(hookURL, app.URL+"/v1/webhooks/"+strings.TrimSuffix(prefix, "…")), "prefix %q of %q", prefix, hookURL)
	require.NotContains(t, b.eval(t, `document.querySelector('[data-testid="urls-table"]').textContent`), hookURL[len(app.URL+"/v1/webhooks/"):],
		"the table shows only the token prefix")
	b.do(t, "copy the URL", chromedp.Click(testID("copy-url")))
	b.waitJS(t, "copy feedback", `document.querySelector('[data-testid="copy-status"]').textContent !== ""`)

	// Customer.io delivers an event to it; Refresh shows it counted.
	event := `{"event_id":"01BROWSER","object_type":"email","metric":"opened","timestamp":1700000000,` +
		`"data":{"customer_id":"c1","identifiers":{"email":"a@example.com"}}}`
	status, body := app.Post(t, hookURL, event)
	require.Equal(t, http.StatusOK, status, string(body))
	b.refreshUntil(t, "1 event counted", `document.querySelector('[data-testid="stat-events"]').textContent === "1"`)
	require.Equal(t, "1", b.text(t, "stat-rudder-events"))
	require.Equal(t, "0", b.text(t, "stat-rejected"))
	require.NotEqual(t, "never", b.text(t, "stat-last-received"))

	// Activity: a bar per hour of the last 24, the event's hour stacked by
	// object type, an accessible title, a legend and a table by event name.
	// The counters are flushed about once a second.
	b.refreshUntil(t, "activity counted", `document.querySelector('[data-testid="activity-total"]').textContent === "1"`)
	require.Equal(t, "true", b.eval(t, `String(!document.querySelector('[data-testid="activity-body"]').hidden && `+
		`document.querySelector('[data-testid="activity-empty"]').hidden)`), "the chart replaces the empty state")
	// Hour labels under the chart: one every 6 hours, the last ending in
	// "now", the first under the first bar; the zone is in the card's head.
	require.Equal(t, "4", b.eval(t, `String(document.querySelectorAll('[data-testid="activity-tick"]').length)`))
	require.True(t, strings.HasSuffix(b.eval(t, `Array.from(document.querySelectorAll('[data-testid="activity-tick"]'), e => e.textContent).join(" ")`), "now"))
	require.Regexp(t, `^ \((UTC|GMT|[A-Z]{3,4})`, b.eval(t, `document.querySelector('[data-testid="activity-zone"]').textContent`))
	bars := `[data-testid="activity-svg"] [data-testid="activity-bar"]`
	require.Equal(t, "24", b.eval(t, `String(document.querySelectorAll('`+bars+`').length)`))
	require.Equal(t, "1", b.eval(t, `String(document.querySelectorAll('`+bars+`:not([data-count="0"])').length)`))
	require.Equal(t, "1", b.eval(t, `document.querySelectorAll('`+bars+`')[23].dataset.count`), "the newest hour is last")
	require.Equal(t, "1", b.eval(t, `String(document.querySelectorAll('`+bars+`')[23].querySelectorAll('rect[data-type="email"]').length)`))
	require.Equal(t, "img", b.eval(t, `document.querySelector('[data-testid="activity-svg"]').getAttribute("role")`))
	title := b.eval(t, `document.getElementById(document.querySelector('[data-testid="activity-svg"]').getAttribute("aria-labelledby").split(" ")[0]).textContent`)
	require.Equal(t, "Events received per hour, last 24 hours: 1 in all", title, "the chart's accessible title")
	require.Contains(t, b.eval(t, `document.getElementById("activity-chart-desc").textContent`), "email 1")
	require.Contains(t, b.eval(t, `document.querySelectorAll('`+bars+`')[23].querySelector("title").textContent`), "1 event (email 1)")
	require.Equal(t, "email 1", b.textOf(t, `[data-testid="legend-item"][data-type="email"]`))
	require.Equal(t, "Email Opened", b.textOf(t, `[data-testid="activity-event-row"] [data-testid="activity-event-name"]`))
	require.Equal(t, "1", b.textOf(t, `[data-testid="activity-event-row"] [data-testid="activity-event-count"]`))
	require.Equal(t, "true", b.eval(t, `String(getComputedStyle(document.querySelector('`+bars+` rect[data-type="email"]')).fill === "rgb(47, 91, 234)")`),
		"bars are coloured by the stylesheet (no inline style under the CSP)")
	// The list, refreshed with the detail, counts it too.
	b.waitJS(t, "list counts the event", `document.querySelector('`+row+` [data-testid="integration-events"]').textContent === "1 event in 24 h"`)
	require.Equal(t, "last just now", b.textOf(t, row+` [data-testid="integration-last-received"]`))
	require.Regexp(t, `^last received .*(UTC|GMT|[A-Z]{3,4})`, b.eval(t, `document.querySelector('`+row+` [data-testid="integration-last-received"]').title`),
		"the absolute time, with its zone, on hover")
	b.screenshot(t, "admin-page.png")

	// Refused deliveries and rejected values are shown: a body that is not
	// JSON, an unsigned post while a key is set (with the hint), and an object
	// without an event_id.
	status, body = app.Post(t, hookURL, "not json")
	require.Equal(t, http.StatusBadRequest, status, string(body))
	status, body = app.Post(t, hookURL, `[{"object_type":"email","note":"<i>kept as text</i>"}]`)
	require.Equal(t, http.StatusOK, status, string(body))
	keyPath := fmt.Sprintf("/v1/integrations/%s/signing-key", b.text(t, "detail-id"))
	status, body = app.Admin(t, http.MethodPut, keyPath, map[string]string{"key": "browser-key"})
	require.Equal(t, http.StatusNoContent, status, string(body))
	status, body = app.Post(t, hookURL, event)
	require.Equal(t, http.StatusUnauthorized, status, string(body))
	status, body = app.Admin(t, http.MethodDelete, keyPath, nil)
	require.Equal(t, http.StatusNoContent, status, string(body))
	sig := `[data-testid="refused-row"][data-reason="signature"]`
	b.refreshUntil(t, "refusals shown", `document.querySelectorAll('[data-testid="refused-row"]').length === 2 && `+
		`document.querySelectorAll('[data-testid="rejection-row"]').length === 1`)
	require.Equal(t, "1", b.textOf(t, sig+` [data-testid="refused-count"]`))
	require.Equal(t, "check the signing key", b.textOf(t, sig+` [data-testid="refused-hint"]`))
	require.Equal(t, "1", b.textOf(t, `[data-testid="refused-row"][data-reason="not_json"] [data-testid="refused-count"]`))
	require.Equal(t, "true", b.eval(t, `String(document.querySelector('`+sig+`').classList.contains("is-recent") && `+
		`getComputedStyle(document.querySelector('`+sig+` .refused-count')).color === "rgb(196, 50, 28)")`), "a refusal of the last hour is red")
	require.Contains(t, b.textOf(t, `[data-testid="rejection-row"] [data-testid="rejection-reason"]`), "missing")
	require.Equal(t, "false", b.eval(t, `String(document.querySelector('[data-testid="rejection-record"]').open)`), "records start collapsed")
	require.Contains(t, b.textOf(t, `[data-testid="rejection-record"] pre`), `<i>kept as text</i>`)
	require.Equal(t, "0", b.eval(t, `String(document.querySelectorAll('[data-testid="rejection-record"] i').length)`))
	require.Regexp(t, `(UTC|GMT|[A-Z]{3,4})`, b.textOf(t, `[data-testid="rejection-row"] td`), "times show their zone")

	// A history import (run from the CLI) is listed with its range, state and counts.
	in, err := app.Store.FindIntegration(context.Background(), "browser_test")
	require.NoError(t, err)
	from, to := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC), time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC)
	imp, err := app.Store.StartImport(context.Background(), in, domain.ImportCustomerIO, "eu", &from, &to, true)
	require.NoError(t, err)
	require.NoError(t, app.Store.SaveImportProgress(context.Background(), imp.ID, "2025-06-01T00:00:00Z/2025-12-01T00:00:00Z", "", true,
		domain.ImportCounts{Requests: 3, Deliveries: 2500, EventsWritten: 9100, EventsExisting: 12}))
	require.NoError(t, app.Store.FinishImport(context.Background(), imp.ID, domain.ImportDone, ""))
	imports := `[data-testid="import-row"]`
	b.refreshUntil(t, "import listed", `document.querySelectorAll('`+imports+`').length === 1`)
	// Read in one evaluation: the detail refreshes itself and re-renders the row.
	importRow := b.eval(t, `(() => { const r = document.querySelector('`+imports+`'); `+
		`return [r.querySelector('[data-testid="import-state"]').textContent, r.querySelector('[data-testid="import-events"]').textContent, r.textContent].join(" | "); })()`)
	parts := strings.SplitN(importRow, " | ", 3)
	require.Len(t, parts, 3, importRow)
	require.Equal(t, "done", parts[0])
	require.Equal(t, "9,100 written, 12 already stored", parts[1])
	require.Contains(t, parts[2], "Customer.io App API (eu)")
	require.Contains(t, parts[2], "2025-06-01 – 2025-12-01")

	// Every field has a label (a visible one, or one for screen readers only).
	require.Equal(t, "", b.eval(t, `Array.from(document.querySelectorAll("input, select, textarea"))`+
		`.filter(e => !e.hidden && e.type !== "hidden" && e.labels.length === 0).map(e => e.id).join(" ")`), "inputs without a label")

	// From a small phone to a wide screen: nothing wider than the window
	// (tables scroll in their card), and the chart fills its card.
	for _, w := range []int64{360, 390, 820, 1280, 1920} {
		b.do(t, fmt.Sprintf("resize to %d px", w), chromedp.EmulateViewport(w, 844))
		b.waitJS(t, fmt.Sprintf("no horizontal overflow at %d px", w),
			fmt.Sprintf(`window.innerWidth === %d && document.documentElement.scrollWidth <= window.innerWidth`, w))
		require.Equal(t, "true", b.eval(t, `(() => { const s = document.querySelector('[data-testid="activity-svg"]').getBoundingClientRect(), `+
			`c = document.querySelector('[data-testid="activity-card"]').getBoundingClientRect(); `+
			`return String(s.width > c.width * 0.8 && s.right <= c.right); })()`), "chart within its card at %d px", w)
		// The hour labels fit their place: none is cut or runs into the
		// next, and the first starts under the chart's left edge.
		require.Equal(t, "true", b.eval(t, `(() => { const ts = Array.from(document.querySelectorAll('[data-testid="activity-tick"]')); `+
			`const s = document.querySelector('[data-testid="activity-svg"]').getBoundingClientRect(); `+
			`const ends = ts.map(e => Math.max(...Array.from(e.children, c => c.getBoundingClientRect().right))); `+
			`return String(ts.every((e, i) => e.scrollWidth <= e.clientWidth && (i === ts.length - 1 || ends[i] < ts[i + 1].getBoundingClientRect().left)) && `+
			`Math.abs(ts[0].getBoundingClientRect().left - s.left) < 1 && ends[ends.length - 1] <= s.right + 1); })()`), "hour labels at %d px", w)
		if w == 390 {
			// On a phone the URL and rejection tables stack: every cell,
			// and the Revoke button, is in sight without scrolling sideways.
			require.Equal(t, "true", b.eval(t, `(() => { const r = document.querySelector('[data-testid="revoke-url"]').getBoundingClientRect(); `+
				`const ws = ['urls-table', 'rejections-table'].map(x => document.querySelector('[data-testid="' + x + '"]').closest(".table-wrap")); `+
				`return String(r.width > 0 && r.left >= 0 && r.right <= window.innerWidth && ws.every(w => w.scrollWidth <= w.clientWidth)); })()`),
				"stacked tables at 390 px")
			require.Equal(t, "Last used", b.eval(t, `getComputedStyle(document.querySelector('[data-testid="url-last-used"]'), "::before").content.replace(/"/g, "")`))
			b.screenshot(t, "admin-page-narrow.png")
			// The detail is below the list: choosing an integration brings
			// it to the top of the window, with the focus on its heading.
			b.do(t, "choose the integration at 390 px", chromedp.Click(chromedp.CSS(row+` [data-testid="open-integration"]`)))
			b.waitFocus(t, "detail-name")
			b.waitJS(t, "detail brought into view", `(() => { const top = document.querySelector('[data-testid="detail-name"]').getBoundingClientRect().top; `+
				`return top >= 0 && top < window.innerHeight / 3; })()`)
		}
	}
	b.do(t, "back to 1280 px", chromedp.EmulateViewport(1280, 900))

	// Revoke it (confirming the dialog): the row says revoked, and the URL is dead.
	b.do(t, "revoke the URL",
		chromedp.Click(chromedp.CSS(`[data-testid="url-row"][data-active="true"] [data-testid="revoke-url"]`)),
	)
	b.waitJS(t, "URL shown as revoked",
		`document.querySelectorAll('[data-testid="url-row"][data-active="false"]').length === 1 && `+
			`document.querySelectorAll('[data-testid="revoke-url"]').length === 0`)
	require.Equal(t, "revoked", b.textOf(t, `[data-testid="url-row"] [data-testid="url-status"]`), "a short badge")
	require.Regexp(t, `^revoked .*(UTC|GMT|[A-Z]{3,4})`, b.eval(t, `document.querySelector('[data-testid="url-status"]').title`),
		"the revocation time, with its zone, on hover")
	require.Contains(t, b.dialogText(), "Revoke webhook URL")
	// Text is readable: the revoked badge and row, the active badge and the
	// muted hints have a contrast of at least 4.5:1 (WCAG AA) on what is
	// behind them.
	require.Equal(t, "", b.eval(t, lowContrastJS(`[data-testid="url-row"][data-active="false"] [data-testid="url-status"]`,
		`[data-testid="url-row"][data-active="false"] td`, `[data-testid="integration-row"] [data-testid="integration-status"]`,
		`.hint`, `[data-testid="integration-row"].is-selected .integration-meta`)), "text below 4.5:1")
	status, body = app.Post(t, hookURL, event)
	require.Equal(t, http.StatusNotFound, status, string(body))
	b.waitJS(t, "the one-time box gone with its URL", `document.querySelector('[data-testid="new-url-box"]').hidden`)

	// Two active URLs at most: the third shows the API's 409 message.
	for i := 1; i <= 2; i++ {
		b.do(t, "generate another URL", chromedp.Click(testID("generate-url")))
		b.waitJS(t, fmt.Sprintf("%d active URLs", i),
			fmt.Sprintf(`document.querySelectorAll('[data-testid="url-row"][data-active="true"]').length === %d`, i))
	}
	// A third cannot be asked for: the button is off and says why.
	b.waitJS(t, "Generate disabled at two active URLs",
		`document.querySelector('[data-testid="generate-url"]').disabled && `+
			`!document.querySelector('[data-testid="generate-limit"]').hidden`)
	require.Contains(t, b.text(t, "generate-limit"), "revoke one to generate another")
	// At 1280 px the revoked badge is short and on one line, no URL row wraps
	// (one line of text with a small button is about 43 px high), and the
	// table fits its card.
	require.Equal(t, "1280", b.eval(t, `String(window.innerWidth)`))
	require.Equal(t, "true", b.eval(t, `(() => { const badge = document.querySelector('[data-testid="url-row"][data-active="false"] [data-testid="url-status"]'); `+
		`const hs = Array.from(document.querySelectorAll('[data-testid="url-row"]'), r => r.getBoundingClientRect().height); `+
		`const wrap = document.querySelector('[data-testid="urls-table"]').parentElement; `+
		`return String(badge.getBoundingClientRect().width < 80 && badge.getBoundingClientRect().height <= 22 && `+
		`hs.length === 3 && Math.max(...hs) < 50 && wrap.scrollWidth <= wrap.clientWidth); })()`),
		"revoked badge and URL table at 1280 px")
	b.screenshot(t, "admin-page-urls.png")

	// Signing key: set, then clear (confirming the dialog).
	b.do(t, "set the signing key",
		chromedp.SendKeys(testID("signing-key-input"), "cio-signing-key"),
		chromedp.Click(testID("signing-key-save")),
	)
	b.waitText(t, "signing-key-state", "a key is set")
	require.Empty(t, b.eval(t, `document.querySelector('[data-testid="signing-key-input"]').value`), "the key is not left in the form")
	b.do(t, "clear the signing key", chromedp.Click(testID("signing-key-clear")))
	b.waitText(t, "signing-key-state", "no key (requests are not signature-checked)")

	// Retention: none by default; a window is saved and shown with the oldest
	// event kept; then cleared.
	b.waitText(t, "retention-state", "none (every event is kept)")
	b.do(t, "set a retention window",
		chromedp.SendKeys(testID("retention-input"), "395"),
		chromedp.Click(testID("retention-save")),
	)
	b.waitText(t, "retention-state", "395 days")
	b.waitText(t, "retention-msg", "Window saved: events older than 395 days are deleted in the background.")
	b.do(t, "clear the retention window", chromedp.Click(testID("retention-clear")))
	b.waitText(t, "retention-state", "none (every event is kept)")

	// Delete the integration (confirming the dialog): marked deleted, actions off.
	b.do(t, "delete the integration", chromedp.Click(testID("delete-integration")))
	b.waitJS(t, "integration shown as deleted",
		`document.querySelector('[data-testid="detail-status"]').textContent.startsWith("deleted") && `+
			`document.querySelector('`+row+` [data-testid="integration-status"]').textContent === "deleted" && `+
			`document.querySelector('[data-testid="generate-url"]').disabled && `+
			`document.querySelectorAll('[data-testid="revoke-url"]').length === 0 && `+
			`!document.querySelector('[data-testid="delete-done"]').hidden`)
	require.Contains(t, b.dialogText(), `Delete integration "Browser Test"?`)
	b.screenshot(t, "admin-page-deleted.png")

	// API text is shown as text, never as markup.
	const markup = `<b id="injected">Bold</b> & "Co"`
	b.do(t, "create an integration with markup in its name",
		chromedp.Evaluate[chromedp.Void](`document.querySelector('[data-testid="create-name"]').value = ""`),
		chromedp.SendKeys(testID("create-name"), markup),
		chromedp.Click(testID("create-submit")),
	)
	b.waitText(t, "detail-name", markup)
	require.Equal(t, markup, b.textOf(t, `[data-testid="integration-row"].is-selected [data-testid="integration-name"]`))
	require.Equal(t, "0", b.eval(t, `String(document.querySelectorAll("#injected").length)`))
	b.screenshot(t, "admin-page-final.png")

	// Sign out: back to the form, the token forgotten.
	b.do(t, "sign out",
		chromedp.Click(testID("signout")),
		chromedp.WaitVisible(testID("signin-view")),
		chromedp.WaitNotVisible(testID("app-view")),
	)
	require.Empty(t, b.eval(t, `sessionStorage.getItem("cioloader.adminToken") || ""`))

	b.requireCleanConsole(t)
	b.requireNoFailedRequests(t)
	t.Logf("browser session took %v (budget %v)", time.Since(b.started).Round(time.Millisecond), browserBudget)
}

// lowContrastJS is an expression that lists the elements among the first
// match of each selector whose text has a contrast ratio below 4.5:1 against
// the first opaque background among it and its ancestors (WCAG 2 formula).
func lowContrastJS(selectors ...string) string {
	q := make([]string, len(selectors))
	for i, s := range selectors {
		q[i] = fmt.Sprintf("%q", s)
	}
	return `(() => {
		const rgb = s => s.match(/[\d.]+/g).map(Number);
		const lum = c => { const [r, g, b] = c.slice(0, 3).map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; }); return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
		const bg = e => { for (; e; e = e.parentElement) { const c = rgb(getComputedStyle(e).backgroundColor); if (c.length < 4 || c[3] === 1) return c; } return [255, 255, 255]; };
		return [` + strings.Join(q, ", ") + `].filter(s => {
			const e = document.querySelector(s);
			if (!e) return true;
			const a = lum(rgb(getComputedStyle(e).color)), b = lum(bg(e));
			return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05) < 4.5;
		}).join(" | ");
	})()`
}

// findChromium returns the path of chromium. Without it the test is skipped
// on a developer's machine, and fails in CI, where it must run.
func findChromium(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("chromium is not installed, and CI is set, so the browser test must run: %v", err)
		}
		t.Skipf("skipping the browser test: chromium is not installed (%v); install it (apt-get install chromium) to run it", err)
	}
	return p
}

type browser struct {
	started time.Time
	root    context.Context // the whole session (browserBudget)
	steps   context.Context // the test's steps (stepsBudget)

	mu      sync.Mutex
	console []chromedp.ConsoleMessage
	dialogs []string
	fetched map[string]int64 // URL → HTTP status of every response
	failed  []string         // requests that got no response
}

func testID(id string) chromedp.CSS { return chromedp.CSS(fmt.Sprintf("[data-testid=%q]", id)) }

// startBrowser starts headless chromium with a fresh profile, answers "OK" to
// every confirm dialog, records the console, and at cleanup takes a screenshot
// if the test failed, then stops the browser.
func startBrowser(t *testing.T, chromium string) *browser {
	t.Helper()
	started := time.Now()
	var out syncBuffer
	root, cancelRoot := context.WithTimeout(context.Background(), browserBudget)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(root,
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		chromedp.CombinedOutput(&out),
	)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
		cancelRoot()
		if t.Failed() {
			t.Logf("chromium output:\n%s", out.String())
		}
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v\n%s", err, out.String())
	}
	steps, cancelSteps := context.WithTimeout(ctx, stepsBudget)
	t.Cleanup(cancelSteps)
	b := &browser{root: ctx, steps: steps, started: started, fetched: map[string]int64{}}

	console := chromedp.Console(ctx)
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for m, err := range console {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, m)
			b.mu.Unlock()
		}
	}()
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.dialogs = append(b.dialogs, ev.Message)
			b.mu.Unlock()
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()

	responses := chromedp.Events(ctx, network.ResponseReceived)
	failures := chromedp.Events(ctx, network.LoadingFailed)
	go func() {
		for ev, err := range responses {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.fetched[ev.Response.URL] = ev.Response.Status
			b.mu.Unlock()
		}
	}()
	go func() {
		for ev, err := range failures {
			if err != nil {
				return
			}
			if !ev.Canceled {
				b.mu.Lock()
				b.failed = append(b.failed, string(ev.Type)+": "+ev.ErrorText)
				b.mu.Unlock()
			}
		}
	}()

	// Registered after the browser's cleanup, so it runs first.
	t.Cleanup(func() {
		if t.Failed() {
			b.logConsole(t)
			b.screenshot(t, "admin-page-failure.png")
		}
	})
	return b
}

func (b *browser) do(t *testing.T, step string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(b.steps, actions...); err != nil {
		t.Fatalf("%s: %v", step, err)
	}
}

// evalAsync is eval of an expression that gives a promise, awaited.
func (b *browser) evalAsync(t *testing.T, js string) string {
	t.Helper()
	s, err := chromedp.Run(b.steps, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
	require.NoError(t, err, js)
	return s
}

// waitFocus waits until the element with this data-testid has the focus.
func (b *browser) waitFocus(t *testing.T, id string) {
	t.Helper()
	b.waitJS(t, "focus on "+id, fmt.Sprintf(`(document.activeElement || {}).dataset && document.activeElement.dataset.testid === %q`, id))
}

func (b *browser) eval(t *testing.T, js string) string {
	t.Helper()
	s, err := chromedp.Run(b.steps, chromedp.Evaluate[string](js))
	require.NoError(t, err, js)
	return s
}

// text is the textContent of the element with this data-testid.
func (b *browser) text(t *testing.T, id string) string {
	t.Helper()
	return b.textOf(t, fmt.Sprintf("[data-testid=%q]", id))
}

func (b *browser) textOf(t *testing.T, css string) string {
	t.Helper()
	s, err := chromedp.Run(b.steps, chromedp.TextContent(chromedp.CSS(css)))
	require.NoError(t, err, css)
	return strings.TrimSpace(s)
}

// waitJS waits until the expression is true.
func (b *browser) waitJS(t *testing.T, what, js string) {
	t.Helper()
	_, err := chromedp.Run(b.steps, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(0)))
	if err != nil {
		t.Fatalf("waiting for %s (%s): %v", what, js, err)
	}
}

func (b *browser) waitText(t *testing.T, id, want string) {
	t.Helper()
	b.waitJS(t, fmt.Sprintf("%s to read %q", id, want),
		fmt.Sprintf(`(document.querySelector('[data-testid=%q]') || {}).textContent === %q`, id, want))
}

// refreshUntil clicks Refresh until the expression is true: it asks for the
// counts again rather than assuming one answer is already up to date.
func (b *browser) refreshUntil(t *testing.T, what, js string) {
	t.Helper()
	for {
		b.do(t, "refresh",
			chromedp.WaitEnabled(testID("refresh")),
			chromedp.Click(testID("refresh")),
			chromedp.WaitEnabled(testID("refresh")),
		)
		ok, err := chromedp.Run(b.steps, chromedp.Evaluate[bool](js))
		require.NoError(t, err, js)
		if ok {
			return
		}
		select {
		case <-b.steps.Done():
			t.Fatalf("waiting for %s (%s): %v", what, js, b.steps.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (b *browser) dialogText() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.dialogs, "\n")
}

// screenshot saves a full-page PNG in the test's temporary directory and, when
// CIOLOADER_SCREENSHOT_DIR is set, there too.
func (b *browser) screenshot(t *testing.T, name string) {
	t.Helper()
	png, err := chromedp.Run(b.root, chromedp.FullScreenshot(100))
	if err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	dirs := []string{t.TempDir()}
	if d := os.Getenv("CIOLOADER_SCREENSHOT_DIR"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Errorf("screenshot dir: %v", err)
			return
		}
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Errorf("write screenshot: %v", err)
			return
		}
		t.Logf("screenshot: %s", p)
	}
}

// requireCleanConsole fails on an uncaught exception or a Content Security
// Policy violation. Other messages (such as the failed 401 request of the
// wrong-token step) are expected.
func (b *browser) requireCleanConsole(t *testing.T) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range b.console {
		if m.IsException() || strings.Contains(m.Text, "Content Security Policy") {
			t.Errorf("browser console: %s", m.String())
		}
	}
}

// requireNoFailedRequests fails on a request the page made that got no
// answer or an error status, other than the admin API's own answers (the
// wrong-token 401, the duplicate's 409), which the page shows.
func (b *browser) requireNoFailedRequests(t *testing.T) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	require.Empty(t, b.failed, "requests without an answer")
	for u, status := range b.fetched {
		if status >= 400 && !strings.Contains(u, "/v1/") {
			t.Errorf("%s: HTTP %d", u, status)
		}
	}
	icon := false
	for u, status := range b.fetched {
		icon = icon || strings.HasSuffix(u, "/admin/favicon.svg") && status == http.StatusOK
	}
	require.True(t, icon, "the favicon was fetched: %v", b.fetched)
}

func (b *browser) logConsole(t *testing.T) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range b.console {
		t.Logf("browser console: %s", m.String())
	}
}

// syncBuffer collects chromium's output, written from another goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}
