# Work pools, queues and a deployment managed by Terraform through terraform-provider-wp.
# `wp plan .` reads this directory too: both tools see the same objects (project "platform").

terraform {
  required_providers {
    wp = {
      source  = "wp-gitops/wp"
      version = "0.1.0"
    }
  }
}

provider "wp" {
  # The owner recorded on every object; `wp plan` uses it as the project name. Default "terraform".
  project = "platform"
  # api_url = "http://127.0.0.1:4200"   # a wp server (or WP_API_URL); default: the store `wp` uses
  # api_key = var.wp_api_key            # or WP_API_KEY
}

variable "etl_concurrency" {
  type    = number
  default = 4
}

resource "wp_work_pool" "etl" {
  name              = "etl"
  type              = "process"
  description       = "Batch ETL on local processes"
  concurrency_limit = var.etl_concurrency
  # base_job_template omitted: the type's default (see data.wp_default_base_job_template)
}

resource "wp_work_queue" "critical" {
  work_pool         = wp_work_pool.etl.name
  name              = "critical"
  priority          = 1
  concurrency_limit = 1
}

resource "wp_work_queue" "bulk" {
  work_pool = wp_work_pool.etl.name
  name      = "bulk"
  priority  = 2
}

resource "wp_deployment" "nightly" {
  name          = "nightly"
  entrypoint    = "flows/etl.py:run_etl" # flow = "run-etl", computed from the function
  work_pool     = wp_work_pool.etl.name
  work_queue    = wp_work_queue.bulk.name
  parameters    = jsonencode({ full_refresh = false })
  job_variables = jsonencode({ env = { LOG_LEVEL = "info" } })
  tags          = ["etl"]
  schedules = [
    { slug = "nightly", cron = "0 2 * * *", timezone = "Europe/Berlin" },
  ]

  lifecycle {
    prevent_destroy = false # true = `wp plan` treats it as `protect: true` too
  }
}

data "wp_work_pool" "etl" {
  name = wp_work_pool.etl.name
}

output "etl_pool_status" {
  value = data.wp_work_pool.etl.status
}
