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
	aid, iids, err := createActivityItems(base, admin, 1, stockN, limit, payTimeoutSec)
	if err != nil {
		return 0, 0, err
	}
	return aid, iids[0], nil
}

// createActivityItems creates and publishes an activity of n items, stockN
// units each, and returns its activity id and item ids.
func createActivityItems(base, admin string, n int, stockN, limit, payTimeoutSec int64) (aid int64, iids []int64, err error) {
	now := time.Now().UTC()
	req := api.CreateActivityRequest{
		Name: "bench", StartAt: now.Add(-time.Minute), EndAt: now.Add(6 * time.Hour),
		PayTimeoutSeconds: payTimeoutSec, PerUserLimit: limit,
	}
	for i := range n {
		req.Items = append(req.Items, api.NewItem{Name: fmt.Sprintf("Phone %d", i+1), PriceCents: 99900, Stock: stockN})
	}
	body, _ := json.Marshal(req)
	var created api.Activity
	if err := call(http.MethodPost, base+"/admin/v1/activities", admin, body, http.StatusCreated, &created); err != nil {
		return 0, nil, err
	}
	if len(created.Items) != n {
		return 0, nil, fmt.Errorf("create activity: %d items in the answer, want %d", len(created.Items), n)
	}
	if err := call(http.MethodPost, base+"/admin/v1/activities/"+created.ID.String()+"/publish", admin, nil, http.StatusOK, nil); err != nil {
		return 0, nil, err
	}
	for _, it := range created.Items {
		iids = append(iids, int64(it.ID))
	}
	return int64(created.ID), iids, nil
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
