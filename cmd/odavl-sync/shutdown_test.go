package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"
)

// Stopping serve while clients upload flat out loses no upload it answered
// 202: after a restart on the same data directory every one is stored.
func TestStopUnderLoadLosesNoAcceptedUpload(t *testing.T) {
	s := startServe(t, nil)
	c := s.Cred
	var mu sync.Mutex
	accepted := map[string]bool{}
	stopAt := time.Now().Add(700 * time.Millisecond)
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 20 * time.Second}
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				body, _ := json.Marshal(insightBody(c.OrganizationID, c.ProjectID, w*100000+i))
				req, _ := http.NewRequest(http.MethodPost, c.APIURL+"/api/v1/sync/insight", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+c.APIKey)
				req.Header.Set("X-Organization-Id", c.OrganizationID)
				req.Header.Set("X-Project-Id", c.ProjectID)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					return // the server has stopped listening
				}
				var rc struct{ EventID string }
				_ = json.NewDecoder(resp.Body).Decode(&rc)
				resp.Body.Close()
				if resp.StatusCode == http.StatusAccepted {
					mu.Lock()
					accepted[rc.EventID] = true
					mu.Unlock()
				}
				if time.Now().After(stopAt.Add(5 * time.Second)) {
					return
				}
			}
		}()
	}
	time.Sleep(time.Until(stopAt))
	if code := s.Stop(); code != 0 {
		t.Fatalf("serve exited %d", code)
	}
	wg.Wait()
	if len(accepted) < 10 {
		t.Fatalf("only %d uploads accepted before the stop", len(accepted))
	}
	s2 := startServeOn(t, s.Data, nil)
	stored := map[string]bool{}
	eventuallyWithin(t, 90*time.Second, "every accepted upload stored", func() bool {
		for off := 0; ; off += 100 {
			var l struct {
				Items []struct{ ID string }
				Total int
			}
			s2.Do(http.MethodGet, "/api/v1/sync/insight?limit=100&offset="+itoa(off), nil).JSON(t, &l)
			for _, it := range l.Items {
				stored[it.ID] = true
			}
			if off+100 >= l.Total {
				break
			}
		}
		missing := 0
		for id := range accepted {
			if !stored[id] {
				missing++
			}
		}
		if missing > 0 {
			time.Sleep(200 * time.Millisecond)
		}
		return missing == 0
	})
	t.Logf("%d uploads accepted before the stop, all stored after restart (%d stored)", len(accepted), len(stored))
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }
