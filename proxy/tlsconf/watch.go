package tlsconf

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/scgate/scgate/internal/filewatch"
)

// DefaultPollInterval is how often Run re-reads watched files when the
// options leave PollInterval at zero: the poll of internal/filewatch, shared
// with the vault.
const DefaultPollInterval = filewatch.DefaultPollInterval

// pollInterval turns an option value into the interval used: 0 means the
// default, a negative value switches polling off.
func pollInterval(d time.Duration) time.Duration {
	switch {
	case d == 0:
		return DefaultPollInterval
	case d < 0:
		return -1
	}
	return d
}

// readAll reads the files and returns their contents with a digest that
// changes when any of them does. Read failures get a digest too (of the
// error), so the same failure seen again by the poll is not reported again.
func readAll(paths []string) ([][]byte, [sha256.Size]byte, error) {
	h := sha256.New()
	contents := make([][]byte, len(paths))
	for i, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, sha256.Sum256([]byte("read error: " + err.Error())), err
		}
		contents[i] = b
		// Length-prefix each file so that moving bytes from one file to the
		// other changes the digest.
		fmt.Fprintf(h, "%d:", len(b))
		h.Write(b)
	}
	var sum [sha256.Size]byte
	copy(sum[:], h.Sum(nil))
	return contents, sum, nil
}

// watchFiles follows paths with internal/filewatch until ctx is done:
// check is called once when watching has started, after every settled burst
// of events that can change one of the files (not those of other files in
// the same folders), and on every poll tick.
func watchFiles(ctx context.Context, paths []string, poll time.Duration, log *zap.Logger, check func()) error {
	return filewatch.Run(ctx, filewatch.Options{
		Files:        func() []string { return paths },
		Check:        check,
		PollInterval: poll,
		Logger:       log,
	})
}
