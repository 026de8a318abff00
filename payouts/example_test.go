package payouts_test

import (
	"fmt"

	"github.com/lode-pool/lode/payouts"
	"github.com/lode-pool/lode/shares/ledger"
)

// A block's window, newest share first, with N = 5 difficulty: carol's 2.0
// share crosses N and counts for 0.5. The 6.25 BTC reward pays a 1% fee.
func ExampleSplit() {
	window := []payouts.WindowShare{
		{Address: "alice", Units: ledger.DiffToUnits(2)},
		{Address: "bob", Units: ledger.DiffToUnits(1.5)},
		{Address: "alice", Units: ledger.DiffToUnits(1)},
		{Address: "carol", Units: ledger.DiffToUnits(2)},
		{Address: "dave", Units: ledger.DiffToUnits(4)},
	}
	contributions, total, _ := payouts.SumWindow(window, ledger.DiffToUnits(5))
	fmt.Println("window units:", total)
	alloc, _ := payouts.Split(625_000_000, 100, contributions)
	fmt.Println("fee:", alloc.Fee)
	for _, c := range alloc.Credits {
		fmt.Println(c.Address, c.Amount)
	}
	// Output:
	// window units: 500000000
	// fee: 6250000
	// alice 371250000
	// bob 185625000
	// carol 61875000
}
