package economics

import "github.com/lode-pool/lode/blocktemplate"

// JobTemplates adapts a source of the current Stratum job (such as
// blocktemplate.Manager.Current) to Templates, so the daemon wires it with
// economics.JobTemplates(manager.Current).
type JobTemplates func() *blocktemplate.Job

var _ Templates = JobTemplates(nil)

// CurrentTemplate returns the height, bits and coinbase value of the
// current job's template; ok is false before the first job or for a job
// without its template.
func (f JobTemplates) CurrentTemplate() (TemplateInfo, bool) {
	if f == nil {
		return TemplateInfo{}, false
	}
	j := f()
	if j == nil || j.Template == nil {
		return TemplateInfo{}, false
	}
	return TemplateInfo{Height: j.Template.Height, Bits: j.Template.Bits, CoinbaseValue: j.Template.CoinbaseValue}, true
}
