package blocktemplate

import (
	"testing"
)

func benchTemplate(b *testing.B) (*Builder, *Template, []byte) {
	b.Helper()
	raw := readFixture(b, "testnet3-2442185-public-pool.json")
	tpl, err := ParseTemplate(raw)
	if err != nil {
		b.Fatal(err)
	}
	bld, err := NewBuilder(Config{Network: regtestParams(), PayoutAddress: regtestAddr, PoolTag: "/lode/"})
	if err != nil {
		b.Fatal(err)
	}
	return bld, tpl, raw
}

func BenchmarkParseTemplate(b *testing.B) {
	_, _, raw := benchTemplate(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := ParseTemplate(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBuilderJob(b *testing.B) {
	bld, tpl, _ := benchTemplate(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bld.Job(tpl, true); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkJobNotify(b *testing.B) {
	bld, tpl, _ := benchTemplate(b)
	job, err := bld.Job(tpl, true)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = job.Notify()
	}
}

func BenchmarkJobBlock(b *testing.B) {
	bld, tpl, _ := benchTemplate(b)
	job, err := bld.Job(tpl, true)
	if err != nil {
		b.Fatal(err)
	}
	en1, en2 := make([]byte, job.Extranonce1Size), make([]byte, job.Extranonce2Size)
	var hdr [80]byte
	b.ReportAllocs()
	for b.Loop() {
		if _, err := job.Block(en1, en2, hdr); err != nil {
			b.Fatal(err)
		}
	}
}
