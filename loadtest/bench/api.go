package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// createActivity creates and publishes a one-item activity through the
// admin API and returns its activity and item ids.
func createActivity(base, admin string, stockN, limit, payTimeoutSec int64) (aid, iid int64, err error) {
	body, _ := json.Marshal(map[string]any{
		"name": "bench", "start_at": time.Now().Add(-time.Minute).UTC().Format(time.RFC3339),
		"end_at": time.Now().Add(6 * time.Hour).UTC().Format(time.RFC3339), "pay_timeout_seconds": payTimeoutSec,
		"per_user_limit": limit, "items": []map[string]any{{"name": "Phone", "price_cents": 99900, "stock": stockN}},
	})
	var created struct {
		ID    string `json:"id"`
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	if err := call(http.MethodPost, base+"/admin/v1/activities", admin, body, http.StatusCreated, &created); err != nil {
		return 0, 0, err
	}
	if err := call(http.MethodPost, base+"/admin/v1/activities/"+created.ID+"/publish", admin, nil, http.StatusOK, nil); err != nil {
		return 0, 0, err
	}
	aid, _ = strconv.ParseInt(created.ID, 10, 64)
	iid, _ = strconv.ParseInt(created.Items[0].ID, 10, 64)
	return aid, iid, nil
}

func call(method, url, token string, body []byte, want int, out any) error {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %d %s", method, url, resp.StatusCode, data)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}
