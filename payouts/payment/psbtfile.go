package payment

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// PSBTFileName is the name a cold payout's PSBT is written under in a PSBT
// directory (the daemon's payouts.psbt_dir, lodectl payouts run -psbt-dir).
func PSBTFileName(id int64) string { return fmt.Sprintf("payout-%d.psbt", id) }

// WritePSBTFiles writes the PSBT of every committed unsigned payout among
// payouts to dir (base64 and a newline, mode 0600) and returns the paths
// written. Each file is written to a temporary name and renamed into place,
// so an offline signer watching dir never picks up half a file. Payouts
// without a PSBT (hot mode, a dry run) are left out; a file that cannot be
// written does not stop the others, and the errors are joined.
func WritePSBTFiles(dir string, payouts []*Payout) ([]string, error) {
	var paths []string
	var errs []error
	for _, po := range payouts {
		if po == nil || po.PSBT == "" || po.ID <= 0 || po.State != StateUnsigned {
			continue
		}
		path := filepath.Join(dir, PSBTFileName(po.ID))
		if err := writeFileAtomic(path, []byte(po.PSBT+"\n")); err != nil {
			errs = append(errs, fmt.Errorf("payment: write psbt of payout %d: %w", po.ID, err))
			continue
		}
		paths = append(paths, path)
	}
	return paths, errors.Join(errs...)
}

func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o600)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}
