package main

import (
	"testing"

	"github.com/lode-pool/lode/payouts/payment"
)

// TestAPIPaymentBroadcastError: a payout the node refused shows why in the
// public payments list; an unreachable node is not described beyond that.
func TestAPIPaymentBroadcastError(t *testing.T) {
	out := payment.Output{Address: "a", Amount: 5}
	for _, tc := range []struct {
		name string
		p    payment.Payout
		want string
	}{
		{"on the network", payment.Payout{State: payment.StateBroadcast}, ""},
		{"refused", payment.Payout{State: payment.StatePending, BroadcastFailures: 2, Refusal: "min relay fee not met",
			LastError: "broadcast: sendrawtransaction x: -26: min relay fee not met"}, "refused by the node: min relay fee not met"},
		{"unreachable", payment.Payout{State: payment.StatePending, BroadcastFailures: 1,
			LastError: "broadcast: sendrawtransaction x: dial tcp 10.0.0.5:8332: connect: connection refused"},
			"the pool's node could not be reached; retried every run"},
		{"confirmed", payment.Payout{State: payment.StateConfirmed, LastError: "old"}, ""},
	} {
		if got := apiPayment(&tc.p, out).BroadcastError; got != tc.want {
			t.Errorf("%s: broadcast_error %q, want %q", tc.name, got, tc.want)
		}
	}
}
