package httpapi_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/cioloader/cioloader/internal/apptest"
	"github.com/cioloader/cioloader/internal/testdb"
)

// Ensure the admin page's Readers section grants a new role and shows its URL
// once, grants an existing one, shows the API's refusal, and revokes.
func TestAdminPageReadersBrowser(t *testing.T) {
	skipShort(t)
	t.Parallel()
	chromium := findChromium(t)
	role := testdb.RoleName(t, "page")
	app := apptest.Start(t)
	in := app.CreateIntegration(t, "Page Readers")
	b := startBrowser(t, chromium)

	b.do(t, "sign in and open the integration",
		chromedp.Navigate(app.URL+"/admin/"),
		chromedp.WaitVisible(testID("token-input")),
		chromedp.SendKeys(testID("token-input"), app.AdminToken),
		chromedp.Click(testID("signin-submit")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="integration-row"][data-schema="page_readers"] [data-testid="open-integration"]`)),
		chromedp.Click(chromedp.CSS(`[data-testid="integration-row"][data-schema="page_readers"] [data-testid="open-integration"]`)),
		chromedp.WaitVisible(testID("readers-empty")),
	)
	b.do(t, "grant a new role",
		chromedp.SendKeys(testID("reader-role"), role),
		chromedp.Click(testID("reader-grant")),
		chromedp.WaitVisible(testID("new-reader-box")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="reader-row"][data-role="`+role+`"][data-complete="true"]`)),
	)
	b.waitFocus(t, "copy-reader")
	url := b.eval(t, `document.querySelector('[data-testid="new-reader-value"]').value`)
	require.True(t, strings.HasPrefix(url, "postgres://"+role+":"), url)
	conn, err := pgx.Connect(context.Background(), url)
	require.NoError(t, err)
	_, err = conn.Exec(context.Background(), `SELECT * FROM page_readers.events`)
	require.NoError(t, err)
	require.NoError(t, conn.Close(context.Background()))

	b.do(t, "dismiss the URL, grant the existing role again",
		chromedp.Click(testID("dismiss-reader")),
		chromedp.WaitNotVisible(testID("new-reader-box")),
		chromedp.Click(testID("reader-create")),
		chromedp.SendKeys(testID("reader-role"), role),
		chromedp.Click(testID("reader-grant")),
		chromedp.WaitVisible(testID("reader-msg")),
	)
	require.Contains(t, b.text(t, "reader-msg"), "can now read every table and view")
	require.Empty(t, b.eval(t, `document.querySelector('[data-testid="new-reader-value"]').value`), "the password is gone from the page")

	b.do(t, "a refused role",
		chromedp.SendKeys(testID("reader-role"), "public"),
		chromedp.Click(testID("reader-grant")),
		chromedp.WaitVisible(testID("readers-error")),
	)
	require.Contains(t, b.text(t, "readers-error"), "reserved by Postgres")

	// Clicked from the page's own script: the list may be drawn again (after
	// the grant above) between finding the button and a pointer click.
	b.eval(t, `(document.querySelector('[data-testid="reader-row"][data-role="`+role+`"] [data-testid="revoke-reader"]').click(), "")`)
	b.do(t, "revoke", chromedp.WaitVisible(testID("readers-empty")))
	require.Contains(t, b.dialogText(), role)
	status, body := app.Admin(t, "GET", "/v1/integrations/"+strconv.FormatInt(in.ID, 10)+"/readers", nil)
	require.Equal(t, 200, status)
	require.JSONEq(t, `[]`, string(body))
}
