package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/cioloader/cioloader/internal/domain"
)

const urlCols = `id, integration_id, token_prefix, created_at, last_used_at, revoked_at`

func scanURL(row pgx.Row) (domain.WebhookURL, error) {
	var u domain.WebhookURL
	err := row.Scan(&u.ID, &u.IntegrationID, &u.TokenPrefix, &u.CreatedAt, &u.LastUsedAt, &u.RevokedAt)
	return u, err
}

// CreateURL stores a new URL's token hash. The database refuses a third active
// URL (trigger webhook_urls_limit, serialised on the integration row), so
// concurrent calls can never make one: that refusal is ErrConflict.
func (s *registry) CreateURL(ctx context.Context, integrationID int64, tokenHash []byte, prefix string) (domain.WebhookURL, error) {
	in, err := s.FindIntegrationByID(ctx, integrationID)
	if err != nil {
		return domain.WebhookURL{}, err
	}
	if in.DisabledAt != nil {
		return domain.WebhookURL{}, domain.Errorf(domain.ErrConflict, "integration %d is deleted; its URLs cannot be regenerated", integrationID)
	}
	u, err := scanURL(s.pool.QueryRow(ctx, `INSERT INTO cioloader.webhook_urls (integration_id, token_hash, token_prefix)
		VALUES ($1, $2, $3) RETURNING `+urlCols, integrationID, tokenHash, prefix))
	if err = translate(err); errors.Is(err, domain.ErrConflict) {
		return u, domain.Errorf(domain.ErrConflict, "integration %d already has %d active webhook URLs: revoke one before generating another", integrationID, domain.MaxActiveURLs)
	}
	if err != nil {
		return u, fmt.Errorf("create webhook url: %w", err)
	}
	return u, nil
}

// ListURLs returns an integration's URLs, newest first (revoked ones too).
func (s *registry) ListURLs(ctx context.Context, integrationID int64) ([]domain.WebhookURL, error) {
	if _, err := s.FindIntegrationByID(ctx, integrationID); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT `+urlCols+` FROM cioloader.webhook_urls WHERE integration_id = $1 ORDER BY id DESC`, integrationID)
	if err != nil {
		return nil, fmt.Errorf("list webhook urls: %w", translate(err))
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.WebhookURL, error) { return scanURL(r) })
	if err != nil {
		return nil, fmt.Errorf("list webhook urls: %w", translate(err))
	}
	return list, nil
}

// RevokeURL revokes a URL. integrationID 0 means "whichever integration owns
// it" (the CLI takes only the URL id). Revoking twice is not an error. Every
// replica drops the token at once (NOTIFY), and within TokenTTL at worst.
func (s *registry) RevokeURL(ctx context.Context, integrationID, urlID int64) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var owner int64
		err := tx.QueryRow(ctx, `UPDATE cioloader.webhook_urls SET revoked_at = coalesce(revoked_at, now())
			WHERE id = $1 AND ($2 = 0 OR integration_id = $2) RETURNING integration_id`, urlID, integrationID).Scan(&owner)
		if errors.Is(err, pgx.ErrNoRows) {
			return domain.Errorf(domain.ErrNotFound, "webhook URL %d does not exist", urlID)
		}
		if err != nil {
			return err
		}
		return notifyRevoked(ctx, tx)
	})
	var de *domain.Error
	if errors.As(err, &de) {
		return err
	}
	if err != nil {
		return fmt.Errorf("revoke webhook url: %w", translate(err))
	}
	s.tokens.clear()
	return nil
}
