package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/seckill/seckill/gateway/api"
)

// createActivity creates and publishes a one-item activity through the
// admin API and returns its activity and item ids.
func createActivity(base, admin string, stockN, limit, payTimeoutSec int64) (aid, iid int64, err error) {
	now := time.Now().UTC()
	body, _ := json.Marshal(api.CreateActivityRequest{
		Name: "bench", StartAt: now.Add(-time.Minute), EndAt: now.Add(6 * time.Hour),
		PayTimeoutSeconds: payTimeoutSec, PerUserLimit: limit,
		Items: []api.NewItem{{Name: "Phone", PriceCents: 99900, Stock: stockN}},
	})
	var created api.Activity
	if err := call(http.MethodPost, base+"/admin/v1/activities", admin, body, http.StatusCreated, &created); err != nil {
		return 0, 0, err
	}
	if len(created.Items) != 1 {
		return 0, 0, fmt.Errorf("create activity: %d items in the answer, want 1", len(created.Items))
	}
	if err := call(http.MethodPost, base+"/admin/v1/activities/"+created.ID.String()+"/publish", admin, nil, http.StatusOK, nil); err != nil {
		return 0, 0, err
	}
	return int64(created.ID), int64(created.Items[0].ID), nil
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
