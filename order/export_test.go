package order

// SetLiveUnitsRead makes LiveUnits call f between its read of the live units
// and its read of the cancelled orders, so a test can commit a cancel there.
func SetLiveUnitsRead(s *Store, f func()) { s.liveUnitsRead = f }
