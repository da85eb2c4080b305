package warehouse_test

import (
	"encoding/json"
	"fmt"

	"github.com/cioloader/cioloader/internal/warehouse"
)

func ExampleTableName() {
	fmt.Println(warehouse.TableName("Email Link Clicked"))
	fmt.Println(warehouse.TableName("In-App Message Opened"))
	fmt.Println(warehouse.ColumnName("context_traits_cioId"))
	// Output:
	// email_link_clicked
	// in_app_message_opened
	// context_traits_cio_id
}

func ExampleColumns() {
	ctx, props := warehouse.Columns(
		map[string]any{"deliveryId": "RAEC", "actionId": json.Number("96"), "link": map[string]any{"url": "https://x"}},
		map[string]any{"traits": map[string]any{"email": "a@example.com"}})
	for _, c := range append(ctx, props...) {
		fmt.Println(c.Name, c.Type.SQL())
	}
	// Output:
	// context_traits_email text
	// action_id bigint
	// delivery_id text
	// link_url text
}
