#    Licensed under the Apache License, Version 2.0 (the "License"); you may
#    not use this file except in compliance with the License. You may obtain
#    a copy of the License at
#
#         http://www.apache.org/licenses/LICENSE-2.0
#
#    Unless required by applicable law or agreed to in writing, software
#    distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#    WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#    License for the specific language governing permissions and limitations
#    under the License.

"""bdm-guard's own options in nova.conf, checked as the launcher checks them.

:func:`check_bdm_guard_options` reads nova.conf with oslo.config and reports
every ``[bdm_guard]``, ``[bdm_guard_db]`` and ``[bdm_guard_events]`` value
that :func:`bdm_guard.opts.check_config` finds refused (out of range, of the
wrong type, not a choice): the same function, so the audit and
``bdm-guard-nova-compute`` (which refuses to start nova-compute with any of
them) never disagree.
"""

from oslo_config import cfg

from bdm_guard.audit import findings as fnd
from bdm_guard import exception
from bdm_guard import opts

#: The finding's kind (``doc/source/cli/audit.rst``).
KIND = 'option_value_out_of_range'


def check_bdm_guard_options(inputs):
    """Every refused bdm-guard option value in nova.conf: one finding each.

    :param inputs: :class:`~bdm_guard.audit.findings.Inputs`.
    :returns: a list of critical :class:`~bdm_guard.audit.findings.Finding`
        (a value another check already reported, on the same line, is not
        reported twice).
    """
    if inputs.nova is None:
        return []
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    try:
        conf(args=[], default_config_files=[inputs.nova.path],
             default_config_dirs=[])
    except cfg.Error:
        return []   # the file's own findings say why it cannot be read
    result = []
    for problem in opts.check_config(conf):
        option = inputs.nova.get(problem.group, problem.name)
        line = option.line if option is not None else None
        if (inputs.nova.path, line) in inputs._reported:
            continue
        inputs._reported.add((inputs.nova.path, line))
        result.append(fnd.Finding(
            KIND, 'critical', inputs.nova.path, line,
            '[%s] %s = %s is refused: %s. bdm-guard-nova-compute refuses to '
            'start nova-compute with it (exit 2); under the patch series, '
            'every boot that reads it fails with ConfigFileValueError.' % (
                problem.group, problem.name,
                exception.shorten(problem.value)
                if problem.value is not None else '?', problem.reason),
            'Give [%s] %s a value oslo.config accepts (see bdm-guard\'s '
            'configuration reference), or remove it to use the default.'
            % (problem.group, problem.name)))
    return result


CHECKS = (check_bdm_guard_options,)
