package shares

// RecordDone is told the outcome of a share handed to an asynchronous
// recorder (shares/ledger.Recorder.RecordAsync, stratum.Recorder): err is nil
// once the share is durable, non-nil when it cannot be made so. token is the
// caller's value given with the share, so one RecordDone can follow many
// shares (a connection answers its shares in request order by token).
// ShareDone must not block: it runs on the recorder's flusher.
type RecordDone interface {
	ShareDone(token uint64, err error)
}
