package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/odavl/sync/client"
)

// submittable are the job types a client may submit.
func submittable() []string { return client.SubmittableJobTypes }

// SubmitResult is what jobs submit prints with --json.
type SubmitResult struct {
	Job        *client.Job      `json:"job"`
	Downloaded []DownloadedFile `json:"downloaded,omitempty"`
}

// DownloadedFile is a file of a job's output saved by --download.
type DownloadedFile struct {
	Name string `json:"name"`
	Path string `json:"path"`
	Size int64  `json:"size"`
}

// OutputFile is a file a job produced, with its signed download URL.
type OutputFile struct {
	FileID      string    `json:"fileId"`
	Name        string    `json:"name"`
	ContentType string    `json:"contentType"`
	Size        int64     `json:"size"`
	DownloadURL string    `json:"downloadUrl"`
	ExpiresAt   time.Time `json:"expiresAt"`
}

// outputFiles are the files of a job's output: DATA_EXPORT's files,
// REPORT_GENERATION's file.
func outputFiles(j *client.Job) []OutputFile {
	var out struct {
		File  *OutputFile  `json:"file"`
		Files []OutputFile `json:"files"`
	}
	if len(j.Output) == 0 || json.Unmarshal(j.Output, &out) != nil {
		return nil
	}
	files := out.Files
	if out.File != nil {
		files = append(files, *out.File)
	}
	return slices.DeleteFunc(files, func(f OutputFile) bool { return f.DownloadURL == "" })
}

// printJobOutput shows a job's files with their download links, else its output.
func printJobOutput(w io.Writer, j *client.Job) {
	files := outputFiles(j)
	for _, f := range files {
		fmt.Fprintf(w, "file %s (%s, %s): %s", f.Name, f.ContentType, bytesText(f.Size), f.DownloadURL)
		if !f.ExpiresAt.IsZero() {
			fmt.Fprintf(w, " (link expires %s)", f.ExpiresAt.UTC().Format(time.RFC3339))
		}
		fmt.Fprintln(w)
	}
	if len(files) == 0 && len(j.Output) > 0 && string(j.Output) != "null" {
		fmt.Fprintf(w, "output: %s\n", j.Output)
	}
}

func newJobSubmit(e *Env, f *clientFlags) *cobra.Command {
	var payload, download string
	var priority int
	var wait bool
	var waitFor time.Duration
	cmd := &cobra.Command{
		Use:   "submit DATA_EXPORT|REPORT_GENERATION|EMAIL_SEND|BULK_INVITATION --payload FILE|-",
		Short: "Queue a job; --wait until it finishes (exit 5 when it failed), --download DIR saves the files it produced",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 || !slices.Contains(submittable(), strings.ToUpper(args[0])) {
				return WithCode(ExitUsage, fmt.Errorf("jobs submit takes a job type: %s", strings.Join(submittable(), ", ")))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if payload == "" {
				return WithCode(ExitUsage, errors.New("--payload FILE (or - for stdin) is required: the job's JSON payload"))
			}
			body, err := readInput(e, payload)
			if err != nil {
				return err
			}
			if _, err := client.CanonicalJSON(body); err != nil {
				return WithCode(ExitRejected, fmt.Errorf("--payload %s: %w", payload, err))
			}
			res := SubmitResult{}
			err = call(cmd.Context(), e, f, "job", func(ctx context.Context, s *session) error {
				j, err := s.cl.SubmitJob(ctx, client.SubmitJobRequest{Type: strings.ToUpper(args[0]), Priority: priority, Payload: body})
				if err != nil {
					return err
				}
				res.Job = j
				s.out.info("%s: %s queued", j.ID, j.Type)
				if wait || download != "" {
					st, err := s.wait(ctx, j.ID, waitFor)
					if err != nil {
						return err
					}
					if st.Job != nil {
						res.Job = st.Job
					} else if res.Job, err = s.cl.GetJob(ctx, j.ID); err != nil {
						return err
					}
					if download != "" && res.Job.Status == client.JobCompleted {
						if res.Downloaded, err = s.download(ctx, res.Job, download); err != nil {
							return err
						}
					}
				}
				s.out.result(res, true, func(w io.Writer) {
					printJobLine(w, res.Job)
					printJobOutput(w, res.Job)
					for _, d := range res.Downloaded {
						fmt.Fprintf(w, "saved %s (%s)\n", d.Path, bytesText(d.Size))
					}
				})
				return nil
			})
			if err != nil {
				return err
			}
			if st := res.Job.Status; st == client.JobFailed || st == client.JobCancelled {
				return WithCode(ExitFailed, fmt.Errorf("job %s %s: %s", res.Job.ID, strings.ToLower(st), res.Job.Error))
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&payload, "payload", "", "the job's JSON payload: a FILE, or - for stdin")
	fl.IntVar(&priority, "priority", 0, "1 (low), 5 (normal, the default), 10 (high) or 20 (critical)")
	fl.BoolVar(&wait, "wait", false, "wait until the job completed, failed or was cancelled (exit 5 unless completed)")
	fl.DurationVar(&waitFor, "wait-timeout", 10*time.Minute, "how long --wait waits")
	fl.StringVar(&download, "download", "", "save the files the job produced in DIR (implies --wait)")
	return cmd
}

// download saves the files of j's output in dir.
func (s *session) download(ctx context.Context, j *client.Job, dir string) ([]DownloadedFile, error) {
	files := outputFiles(j)
	if len(files) == 0 {
		s.out.warn("job %s produced no file to download", j.ID)
		return nil, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, WithCode(ExitUsage, fmt.Errorf("--download: %w", err))
	}
	var out []DownloadedFile
	for _, f := range files {
		b, err := s.cl.Download(ctx, f.DownloadURL)
		if err != nil {
			return out, fmt.Errorf("downloading %s: %w", f.Name, err)
		}
		if f.Size > 0 && int64(len(b)) != f.Size {
			return out, fmt.Errorf("downloading %s: got %d of its %d bytes (the client downloads at most 32 MiB; use its link: odavl-sync jobs get %s)", f.Name, len(b), f.Size, j.ID)
		}
		path := filepath.Join(dir, filepath.Base(filepath.Clean("/"+f.Name)))
		if err := os.WriteFile(path+".part", b, 0o644); err != nil {
			return out, fmt.Errorf("saving %s: %w", f.Name, err)
		}
		if err := os.Rename(path+".part", path); err != nil {
			return out, fmt.Errorf("saving %s: %w", f.Name, err)
		}
		out = append(out, DownloadedFile{Name: f.Name, Path: path, Size: int64(len(b))})
	}
	return out, nil
}
