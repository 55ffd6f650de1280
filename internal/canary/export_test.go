package canary

// IdleForTest reports whether the controller runs and has no canary queued or running.
func (c *Controller) IdleForTest() bool {
	c.mu.Lock()
	q := c.queue
	c.mu.Unlock()
	return q != nil && q.idle()
}
