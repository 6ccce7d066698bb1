package keyvault

import (
	"context"
	"errors"

	"go.uber.org/zap"

	"github.com/scgate/scgate/internal/filewatch"
)

// Run follows the vault file until ctx is done, then returns nil.
//
// The watching is internal/filewatch's: the folders of the vault file and of
// the secret_files of the vault in service are watched (a Kubernetes Secret
// swaps a "..data" symlink; tools replace files by rename), only events that
// can change one of those files count, a burst becomes one reload, and a
// poll (unless disabled) catches what notifications miss. A reload whose
// content is unchanged is silent; an invalid file is logged and reported,
// and the last good vault stays in service.
func (w *Watcher) Run(ctx context.Context) error {
	if !w.running.CompareAndSwap(false, true) {
		return errors.New("keyvault: Watcher.Run is already running")
	}
	defer w.running.Store(false)
	if w.disableNotify && w.poll < 0 {
		w.log.Warn("vault changes will only be picked up by Reload: polling is disabled and the directory is not watched",
			zap.String("file", w.path))
	}
	return filewatch.Run(ctx, filewatch.Options{
		Files:         w.files,
		Check:         func() { _ = w.reload(false) }, // reported by reload itself
		PollInterval:  w.poll,
		DisableNotify: w.disableNotify,
		Logger:        w.log,
	})
}

// files lists the files whose changes matter: the vault file and the
// secret_files of the vault in service.
func (w *Watcher) files() []string {
	return append([]string{w.path}, w.Current().SecretFiles()...)
}
