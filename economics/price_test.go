package economics

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

func TestExtractPrice(t *testing.T) {
	cases := []struct {
		name, doc, field string
		want             float64
		ok               bool
	}{
		{"nested number", `{"bitcoin":{"usd":98765.43}}`, "bitcoin.usd", 98765.43, true},
		{"string number", `{"data":{"price":"0.0712"}}`, "data.price", 0.0712, true},
		{"array index", `{"data":[{"p":1.5},{"p":2.5}]}`, "data.1.p", 2.5, true},
		{"root number", `42`, "", 42, true},
		{"negative power price", `{"p":-0.01}`, "p", -0.01, true},
		{"missing field", `{"data":{}}`, "data.price", 0, false},
		{"not a number", `{"p":"n/a"}`, "p", 0, false},
		{"NaN string", `{"p":"NaN"}`, "p", 0, false},
		{"infinite", `{"p":"1e999"}`, "p", 0, false},
		{"object", `{"p":{"x":1}}`, "p", 0, false},
		{"bool", `{"p":true}`, "p", 0, false},
		{"index out of range", `{"d":[1]}`, "d.3", 0, false},
		{"walk into number", `{"d":1}`, "d.x", 0, false},
		{"invalid json", `{"p":`, "p", 0, false},
		{"html error page", `<html>502</html>`, "p", 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ExtractPrice([]byte(tc.doc), tc.field)
			if tc.ok != (err == nil) || got != tc.want {
				t.Fatalf("got %v, %v; want %v ok=%v", got, err, tc.want, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrFeedValue) {
				t.Fatalf("error %v does not wrap ErrFeedValue", err)
			}
		})
	}
}

func FuzzExtractPrice(f *testing.F) {
	f.Add([]byte(`{"bitcoin":{"usd":98765.43}}`), "bitcoin.usd")
	f.Add([]byte(`{"data":[{"p":"1"}]}`), "data.0.p")
	f.Add([]byte(`{"p":"NaN"}`), "p")
	f.Fuzz(func(t *testing.T, doc []byte, field string) {
		v, err := ExtractPrice(doc, field)
		if err == nil && !finite(v) {
			t.Fatalf("accepted %v", v)
		}
	})
}

// A real local feed: a good value, then the feed fails (HTTP 503): the last
// value is kept with its age; past max age it is stale.
func TestFeedStaleness(t *testing.T) {
	srv := newPriceServer(t)
	srv.set(97000, false)
	clock := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	f := NewFeed(FeedConfig{URL: srv.URL, Field: "data.price", MaxAge: 10 * time.Minute}, true, zaptest.NewLogger(t))
	f.now = func() time.Time { return clock }
	ctx := context.Background()
	if v := f.Value(clock); v.Have || v.Fresh {
		t.Fatalf("before any fetch: %+v", v)
	}
	if err := f.Fetch(ctx); err != nil {
		t.Fatal(err)
	}
	srv.set(0, true)
	if err := f.Fetch(ctx); err == nil {
		t.Fatal("503 accepted")
	}
	v := f.Value(clock.Add(5 * time.Minute))
	if !v.Have || !v.Fresh || v.Value != 97000 || v.Age != 5*time.Minute || v.Err == "" {
		t.Fatalf("5 min after: %+v", v)
	}
	if v := f.Value(clock.Add(11 * time.Minute)); !v.Have || v.Fresh || v.Value != 97000 {
		t.Fatalf("11 min after: %+v", v)
	}
	// A zero BTC price would divide: refused, the old value stays.
	srv.set(0, false)
	if err := f.Fetch(ctx); err == nil {
		t.Fatal("zero BTC price accepted")
	}
	// A feed that does not answer at all is bounded by the timeout.
	hang := newTestServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	slow := NewFeed(FeedConfig{URL: hang, Timeout: 50 * time.Millisecond}, true, nil)
	if err := slow.Fetch(ctx); err == nil {
		t.Fatal("hanging feed: no error")
	}
}

func TestTimeOfUse(t *testing.T) {
	peak := TimeOfUse{Days: []string{"mon", "tue", "wed", "thu", "fri"}, From: "17:00", To: "21:00", Price: 0.3}
	night := TimeOfUse{Days: []string{"fri"}, From: "22:00", To: "06:00", Price: 0.05}
	fri := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC) // a Friday
	cases := []struct {
		r    TimeOfUse
		at   time.Time
		want bool
	}{
		{peak, fri.Add(17 * time.Hour), true},
		{peak, fri.Add(21 * time.Hour), false}, // To is exclusive
		{peak, fri.Add(16*time.Hour + 59*time.Minute), false},
		{peak, fri.Add(24*time.Hour + 18*time.Hour), false}, // Saturday
		{night, fri.Add(23 * time.Hour), true},
		{night, fri.Add(24*time.Hour + 5*time.Hour), true},  // Saturday 05:00 belongs to Friday night
		{night, fri.Add(5 * time.Hour), false},              // Friday 05:00 belongs to Thursday night
		{night, fri.Add(24*time.Hour + 6*time.Hour), false}, // end exclusive
	}
	for i, tc := range cases {
		if got := tc.r.applies(tc.at); got != tc.want {
			t.Errorf("case %d (%s %s): %v, want %v", i, tc.at.Weekday(), tc.at.Format("15:04"), got, tc.want)
		}
	}
}
