package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/lode-pool/lode/internal/redisstore"
	"github.com/lode-pool/lode/payouts/payment"
)

// TestPrintResultNotReplicated: a batch whose commit the replicas did not
// acknowledge is debited on the primary, so lodectl must not tell the
// operator its balances are intact; a batch refused before its commit is.
func TestPrintResultNotReplicated(t *testing.T) {
	var b strings.Builder
	printResult(&b, &payment.Result{Failed: []payment.BatchError{
		{Addresses: []string{"addrA"}, Err: fmt.Errorf("payment: commit payout: %w", fmt.Errorf("redisstore: commit payout: %w: 0 of 1 within 500ms", redisstore.ErrNotReplicated))},
		{Addresses: []string{"addrB"}, Err: errors.New("payment: no usable pool utxo")},
	}})
	out := b.String()
	for _, want := range []string{"NOT BROADCAST (committed on the Redis primary", "addrA", "NOT PAID (balances intact) addrB"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "NOT PAID (balances intact) addrA") {
		t.Errorf("an unacknowledged commit is reported as balances intact:\n%s", out)
	}
}
