package economics

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// The configuration example in docs/economics.md decodes into Config with
// the keys the code reads, and is valid.
func TestDocsConfigExample(t *testing.T) {
	doc, err := os.ReadFile("../docs/economics.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	start := strings.Index(text, "```yaml\neconomics:")
	if start < 0 {
		t.Fatal("docs/economics.md has no economics: yaml example")
	}
	body := text[start+len("```yaml\n"):]
	body = body[:strings.Index(body, "```")]
	var file struct {
		Economics Config `yaml:"economics"`
	}
	dec := yaml.NewDecoder(strings.NewReader(body))
	dec.KnownFields(true) // a key the code does not read fails
	if err := dec.Decode(&file); err != nil {
		t.Fatalf("docs example: %v", err)
	}
	c := file.Economics
	if err := c.Validate(); err != nil {
		t.Fatalf("docs example invalid: %v", err)
	}
	if c.Refresh != 30*time.Second || c.Advice.MinDwell != 30*time.Minute || len(c.Power.Schedule) != 2 ||
		c.Power.ForcedOff[0].To.Sub(c.Power.ForcedOff[0].From) != 2*time.Hour || c.Devices.Overrides[1].JPerTH != 24.5 ||
		c.Webhook.MaxBackoff != 5*time.Minute || c.Power.Feed.MaxAge != 15*time.Minute {
		t.Fatalf("decoded %+v", c)
	}
}

// The check vector of the issue, as operators would compute it.
func ExampleHashprice() {
	satPerTHDay := Hashprice(21448277761059, 625_000_000)
	fmt.Printf("%.7f BTC per PH/s per day\n", satPerTHDay*1000/1e8)
	// Output: 0.0058619 BTC per PH/s per day
}

func ExampleSubsidy() {
	fmt.Println(Subsidy(840_000, mainNet), Subsidy(150, regTest))
	// Output: 3.12500000 BTC 25 BTC
}
