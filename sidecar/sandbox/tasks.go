package sandbox

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// task is a Keap task (on a contact), served through [V2].
type task struct {
	id, contactID                      int64
	title, description, kind, priority string
	assignedTo                         string
	completed                          bool
	due, completedAt                   time.Time
	created, updated                   time.Time
	custom                             customValues
}

// v2 renders [V2]'s Task: ids are strings there; modification_time is its clock.
func (t *task) v2() map[string]any {
	out := map[string]any{
		"id": strconv.FormatInt(t.id, 10), "title": t.title, "completed": t.completed,
		"create_time": keapTime(t.created), "modification_time": keapTime(t.updated),
		"custom_fields": t.custom.v2(),
	}
	for k, v := range map[string]string{"description": t.description, "type": t.kind, "priority": t.priority, "assigned_to_user_id": t.assignedTo} {
		if v != "" {
			out[k] = v
		}
	}
	if t.contactID != 0 {
		out["contact_id"] = strconv.FormatInt(t.contactID, 10)
	}
	if !t.due.IsZero() {
		out["due_time"] = keapTime(t.due)
	}
	if !t.completedAt.IsZero() {
		out["completion_time"] = keapTime(t.completedAt)
	}
	return out
}

// taskInput is [V2]'s CreateTaskRequest / CreateUpdateTaskRequest, as far as the sandbox keeps it.
type taskInput struct {
	Title       *string `json:"title"`
	Description *string `json:"description"`
	Type        *string `json:"type"`
	Priority    *string `json:"priority"`
	Completed   *bool   `json:"completed"`
	DueTime     *string `json:"due_time"`
	ContactID   *string `json:"contact_id"`
	AssignedTo  *string `json:"assigned_to_user_id"`
	// CustomFields replace the task's values (see setCustomValues).
	CustomFields []customFieldInput `json:"custom_fields"`
}

func (in taskInput) apply(s *store, t *task, mask []string) error {
	set := maskedSetter(mask)
	if err := s.setCustomValues(recordTask, &t.custom, in.CustomFields, set("custom_fields", in.CustomFields != nil)); err != nil {
		return err
	}
	if set("title", in.Title != nil) {
		t.title = deref(in.Title)
	}
	if set("description", in.Description != nil) {
		t.description = deref(in.Description)
	}
	if set("type", in.Type != nil) {
		t.kind = deref(in.Type)
	}
	if set("priority", in.Priority != nil) {
		t.priority = deref(in.Priority)
	}
	if set("assigned_to_user_id", in.AssignedTo != nil) {
		t.assignedTo = deref(in.AssignedTo)
	}
	if set("due_time", in.DueTime != nil) {
		t.due = time.Time{}
		if v := deref(in.DueTime); v != "" {
			d, err := parseKeapTime(v)
			if err != nil {
				return v2Error(http.StatusBadRequest, "Invalid due_time: "+v)
			}
			t.due = d
		}
	}
	if set("contact_id", in.ContactID != nil) {
		t.contactID = 0
		if v := deref(in.ContactID); v != "" {
			id, err := strconv.ParseInt(v, 10, 64)
			if err != nil || s.contacts[id] == nil {
				return v2Error(http.StatusBadRequest, "Contact not found: "+v)
			}
			t.contactID = id
		}
	}
	if set("completed", in.Completed != nil) {
		done := in.Completed != nil && *in.Completed
		if done && !t.completed {
			t.completedAt = s.stamp.clock.Now()
		}
		if !done {
			t.completedAt = time.Time{}
		}
		t.completed = done
	}
	return nil
}

func taskEvent(key string, t *task) event {
	return event{key: key, objectType: "task", id: t.id, apiPath: fmt.Sprintf("/v2/tasks/%d", t.id), at: t.updated}
}

func (s *store) createTask(in taskInput) (*task, error) {
	var out *task
	err := s.write(func() ([]event, error) {
		if in.AssignedTo == nil || *in.AssignedTo == "" {
			return nil, v2Error(http.StatusBadRequest, "assigned_to_user_id is required")
		}
		t := &task{}
		if err := in.apply(s, t, nil); err != nil {
			return nil, err
		}
		t.id = s.nextID("task")
		t.created = s.stamp.next()
		t.updated = t.created
		addRecord(&s.tasks, &s.taskIDs, t.id, t)
		out = t
		return []event{taskEvent("task.add", t)}, nil
	})
	return out, err
}

func (s *store) updateTask(id int64, in taskInput, mask []string) (*task, error) {
	var out *task
	err := s.write(func() ([]event, error) {
		t := s.tasks[id]
		if t == nil {
			return nil, v2Error(http.StatusNotFound, fmt.Sprintf("Task with ID %d not found", id))
		}
		next := *t
		if err := in.apply(s, &next, mask); err != nil {
			return nil, err
		}
		*t = next
		t.updated = s.stamp.next()
		out = t
		return []event{taskEvent("task.edit", t)}, nil
	})
	return out, err
}

func (s *store) deleteTask(id int64) error {
	return s.write(func() ([]event, error) {
		t := s.tasks[id]
		if t == nil {
			return nil, v2Error(http.StatusNotFound, fmt.Sprintf("Task with ID %d not found", id))
		}
		delete(s.tasks, id)
		s.taskIDs = removeID(s.taskIDs, id)
		t.updated = s.stamp.next()
		return []event{taskEvent("task.delete", t)}, nil
	})
}

// listTasksV2 serves page_size/page_token paging, filter=since_time==T;until_time==T;contact_id==N
// and order_by=id|create_time|due_time|update_time [asc|desc].
func (a *restAPI) listTasksV2(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	size, offset, err := v2Page(q)
	if err != nil {
		return err
	}
	var since, until time.Time
	var contact int64
	if f := q.Get("filter"); f != "" {
		for _, clause := range strings.Split(f, ";") {
			name, val, ok := strings.Cut(clause, "==")
			var perr error
			switch {
			case !ok:
				perr = badRequest("Invalid filter: " + clause)
			case name == "since_time":
				since, perr = parseKeapTime(val)
			case name == "until_time":
				until, perr = parseKeapTime(val)
			case name == "contact_id":
				contact, perr = strconv.ParseInt(val, 10, 64)
			default:
				perr = badRequest("Invalid filter: " + clause)
			}
			if perr != nil {
				return badRequest("Invalid filter: " + clause)
			}
		}
	}
	field, dir, _ := strings.Cut(q.Get("order_by"), " ")
	if field != "" && field != "id" && field != "create_time" && field != "due_time" && field != "update_time" {
		return badRequest("Invalid order_by: " + q.Get("order_by"))
	}
	a.store.mu.RLock()
	defer a.store.mu.RUnlock()
	var all []*task
	for _, id := range a.store.taskIDs {
		t := a.store.tasks[id]
		if (since.IsZero() || !t.updated.Before(since)) && (until.IsZero() || !t.updated.After(until)) && (contact == 0 || t.contactID == contact) {
			all = append(all, t)
		}
	}
	desc := strings.EqualFold(dir, "desc")
	sort.SliceStable(all, func(i, j int) bool {
		x, y := all[i], all[j]
		switch {
		case field == "create_time" && !x.created.Equal(y.created):
			return x.created.Before(y.created) != desc
		case field == "due_time" && !x.due.Equal(y.due):
			return x.due.Before(y.due) != desc
		case field == "update_time" && !x.updated.Equal(y.updated):
			return x.updated.Before(y.updated) != desc
		}
		return (x.id < y.id) != desc
	})
	writeV2Page(w, "tasks", all, size, offset, func(t *task) map[string]any { return askedOnly(r, t.v2()) })
	return nil
}

func (a *restAPI) getTaskV2(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	a.store.mu.RLock()
	defer a.store.mu.RUnlock()
	t := a.store.tasks[id]
	if t == nil {
		return v2Error(http.StatusNotFound, fmt.Sprintf("Task with ID %d not found", id))
	}
	writeJSON(w, http.StatusOK, askedOnly(r, t.v2()))
	return nil
}

func (a *restAPI) createTaskV2(w http.ResponseWriter, r *http.Request) error {
	return v2Create(a, w, r, a.store.createTask)
}

func (a *restAPI) patchTaskV2(w http.ResponseWriter, r *http.Request) error {
	return v2Patch(a, w, r, a.store.updateTask)
}

func (a *restAPI) deleteTaskV2(w http.ResponseWriter, r *http.Request) error {
	return v2Delete(w, r, a.store.deleteTask)
}
